/**
 * The responder's side of streams on one channel (PROTOCOL.md 13): opening requests, routing the
 * requester's `$/stream/*` messages to the right stream, failing streams on a protocol error,
 * cancellation or the end of the request. Sans-IO: the channel feeds messages in; messages and
 * the `-32010` answer leave through {@link ResponderOutput}.
 */
import { ErrorCodes, RemoteError, RequestCancelled } from "../errors.js";
import type { RequestId } from "../jsonrpc/messages.js";
import { idKey } from "../channel/outgoing.js";
import type { WireError } from "../channel/handlers.js";
import { StreamConsumer, StreamProducer, streamError, type Emit } from "./endpoints.js";
import { DEFAULT_WINDOW, MAX_OPEN_STREAMS, parseOpening, parseStreamMessage, tooManyStreams, type StreamDir } from "./wire.js";

/** Where the responder's stream layer sends. */
export interface ResponderOutput {
  /** Sends a stream notification; throws at once if it cannot be encoded. */
  readonly emit: Emit;
  /** Answers request `id` with `error` at once (a -32010) and cancels its handler with `reason`. */
  readonly failRequest: (id: RequestId, error: WireError, reason: RemoteError) => void;
}

/** The streams of one running request. */
export class RequestStreams {
  /** The output stream's producer, when the request opened one. */
  output?: StreamProducer;
  /** The input stream's consumer, when the request opened one. */
  input?: StreamConsumer;
  /** Set once the request was answered or failed: its stream messages are dropped from then on. */
  closed = false;

  constructor(readonly id: RequestId) {}

  get count(): number {
    return (this.output === undefined ? 0 : 1) + (this.input === undefined ? 0 : 1);
  }

  /** Fails every stream of the request with `error` (the first failure wins). */
  fail(error: Error): void {
    this.output?.fail(error);
    this.input?.fail(error);
  }
}

/** What {@link ResponderStreams.open} decided for a request. */
export type OpenResult =
  | { readonly kind: "plain" }
  | { readonly kind: "refused"; readonly error: WireError }
  | { readonly kind: "open"; readonly params: Record<string, unknown>; readonly streams: RequestStreams };

const PLAIN: OpenResult = { kind: "plain" };

/** The streams the peer opened on this channel, by request id. */
export class ResponderStreams {
  private readonly requests = new Map<string, RequestStreams>();
  private openCount = 0;

  /**
   * @param channel the channel's name, for messages ("control", "data")
   * @param output where messages leave
   */
  constructor(
    private readonly channel: string,
    private readonly output: ResponderOutput,
  ) {}

  /** Streams currently open (an `in`+`out` request counts two). */
  get open(): number {
    return this.openCount;
  }

  /**
   * Opens the streams of a request whose method exists (13.1): the descriptor is checked
   * (-32602), then the limit (-32009); an input stream gets its window of credit at once.
   * `floatMembers`: what the decoder saw written as floats (bits of `FloatMember`, float-members.ts).
   */
  openRequest(id: RequestId, method: string, params: unknown, inWindow = DEFAULT_WINDOW, floatMembers = 0): OpenResult {
    const opening = parseOpening(params, floatMembers);
    if (opening.kind === "not_stream") return PLAIN;
    if (opening.kind === "invalid_open") {
      return { kind: "refused", error: { code: ErrorCodes.InvalidParams, message: `Invalid params: ${method}: ${opening.reason} (PROTOCOL.md 13.1)` } };
    }
    const wanted = (opening.out === undefined ? 0 : 1) + (opening.in === undefined ? 0 : 1);
    if (this.openCount + wanted > MAX_OPEN_STREAMS) return { kind: "refused", error: tooManyStreams(this.channel, this.openCount) };
    const streams = new RequestStreams(id);
    if (opening.out !== undefined) streams.output = new StreamProducer(id, "out", opening.out.window, this.output.emit);
    if (opening.in !== undefined) streams.input = new StreamConsumer(id, "in", inWindow, this.output.emit);
    this.requests.set(idKey(id), streams);
    this.openCount += wanted;
    streams.input?.open();
    return { kind: "open", params: opening.params, streams };
  }

  /**
   * A `$/stream/*` notification from the requester, handled at once, in arrival order (13.4).
   * `floatMembers`: what the decoder saw written as floats (bits of `FloatMember`, float-members.ts).
   */
  receive(method: string, params: unknown, floatMembers = 0): void {
    const message = parseStreamMessage(method, params, floatMembers);
    if (message.kind === "unnamed") return;
    // Items and ends of input streams, credit of output streams: the rest names no stream of ours
    // (by the method, so that a malformed credit reaches its output stream too).
    const ours = method === "$/stream/credit" ? message.dir === "out" : message.dir === "in";
    const streams = ours ? this.requests.get(idKey(message.stream)) : undefined;
    if (streams === undefined || streams.closed) return;
    const dir: StreamDir = message.dir;
    if (dir === "in" && streams.input === undefined) return;
    if (dir === "out" && streams.output === undefined) return;
    switch (message.kind) {
      case "malformed":
        this.protocolError(streams, dir, `malformed ${method}: ${message.reason}`);
        return;
      case "item": {
        const broken = streams.input?.receiveItem(message.seq, message.value) ?? null;
        if (broken !== null) this.protocolError(streams, dir, broken);
        return;
      }
      case "credit":
        if (streams.output?.grant(message.add) === false) this.protocolError(streams, dir, `credit of ${message.add} takes the credit above 1024`);
        return;
      case "end":
        streams.input?.receiveEnd();
        return;
      case "error":
        streams.input?.receiveEnd(new RemoteError(message.code, message.message, message.data));
        return;
    }
  }

  /** The request was cancelled (`$/cancelRequest`, shutdown, the channel closed): its streams' steps raise `reason`. */
  cancel(id: RequestId, reason: Error = new RequestCancelled()): void {
    const streams = this.requests.get(idKey(id));
    if (streams === undefined || streams.closed) return;
    streams.closed = true;
    streams.fail(reason);
  }

  /** The request was answered: its streams end, and stop counting against the limit. */
  finish(id: RequestId): void {
    const key = idKey(id);
    const streams = this.requests.get(key);
    if (streams === undefined) return;
    this.requests.delete(key);
    this.openCount -= streams.count;
    streams.closed = true;
    streams.fail(streamError(ErrorCodes.StreamClosed, id, "out", `stream ${String(id)} on ${this.channel} closed: the request was answered`));
  }

  /** Fails a stream for breaking 13.3/13.4 (13.5): the request is answered -32010 at once and its handler cancelled. */
  private protocolError(streams: RequestStreams, dir: StreamDir, rule: string): void {
    const message = `stream ${String(streams.id)} (${dir}) on ${this.channel}: ${rule}`;
    const error = streamError(ErrorCodes.StreamProtocolError, streams.id, dir, message);
    streams.closed = true;
    streams.fail(error);
    this.output.failRequest(streams.id, { code: error.code, message, data: error.data }, error);
    this.finish(streams.id);
  }
}
