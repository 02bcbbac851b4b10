/**
 * The requester's side of streams on one channel (PROTOCOL.md 13): the streams of the requests this
 * side sent (it consumes their output streams and produces their input streams), the routing of the
 * responder's `$/stream/*` messages to them, their end with the response, and failing a call that
 * breaks 13.3/13.4 (13.5: `$/cancelRequest`, the response dropped). Sans-IO: messages leave through
 * `emit`; a failed call is completed through `failCall`.
 */
import { ErrorCodes, RemoteError } from "../errors.js";
import type { RequestId } from "../jsonrpc/messages.js";
import { idKey } from "../channel/outgoing.js";
import { StreamConsumer, StreamProducer, streamError, type Emit } from "./endpoints.js";
import { MAX_OPEN_STREAMS, parseStreamMessage, tooManyStreams, type StreamDir } from "./wire.js";

/** Where the requester's stream layer sends. */
export interface RequesterOutput {
  /** Sends a stream notification (or `$/cancelRequest`); throws at once if it cannot be encoded. */
  readonly emit: Emit;
  /** Completes our request `id` with `error` (a -32010) now: its caller's promise rejects. */
  readonly failCall: (id: RequestId, error: RemoteError) => void;
}

/** The streams of one request of ours. */
export class CallStreams {
  /** The output stream's consumer (items the responder sends), when the request opened one. */
  output?: StreamConsumer;
  /** The input stream's producer (items this side sends), when the request opened one. */
  input?: StreamProducer;

  constructor(readonly id: RequestId) {}

  get count(): number {
    return (this.output === undefined ? 0 : 1) + (this.input === undefined ? 0 : 1);
  }
}

/** The streams this side opened with its requests on one channel, by request id. */
export class RequesterStreams {
  private readonly calls = new Map<string, CallStreams>();
  /** Requests whose response is to be dropped: failed by a protocol error, or abandoned (13.5, 13.6). */
  private readonly dropped = new Set<string>();

  /**
   * @param channel the channel's name, for messages ("control", "data")
   * @param output where messages leave
   */
  constructor(
    private readonly channel: string,
    private readonly output: RequesterOutput,
  ) {}

  /** Streams open from this side (an `in`+`out` request counts two). */
  get open(): number {
    let open = 0;
    for (const call of this.calls.values()) open += call.count;
    return open;
  }

  /** Throws a -32009 RemoteError unless `count` more streams fit: at most 64 open from this side (13.8). */
  room(count: number): void {
    const open = this.open;
    if (open + count > MAX_OPEN_STREAMS) {
      const { code, message, data } = tooManyStreams(this.channel, open);
      throw new RemoteError(code, `${message} (opened by this side)`, data);
    }
  }

  /**
   * Registers the streams of request `id` as it is sent: an output stream consumed with `window`
   * (undefined: none), an input stream produced from zero credit (13.3). Throws like {@link room}.
   */
  openCall(id: RequestId, window: number | undefined, input: boolean): CallStreams {
    const call = new CallStreams(id);
    if (window !== undefined) call.output = new StreamConsumer(id, "out", window, this.output.emit);
    if (input) call.input = new StreamProducer(id, "in", 0, this.output.emit);
    this.room(call.count);
    call.output?.open(false);
    this.calls.set(idKey(id), call);
    return call;
  }

  /**
   * A `$/stream/*` notification from the responder, handled at once, in arrival order (13.4).
   * `floatMembers`: what the decoder saw written as floats (bits of `FloatMember`, float-members.ts).
   */
  receive(method: string, params: unknown, floatMembers = 0): void {
    const message = parseStreamMessage(method, params, floatMembers);
    if (message.kind === "unnamed") return;
    // Credit of input streams, items (and the misdirected ends) of output streams: the rest is the
    // responder side's (13.2).
    const ours = method === "$/stream/credit" ? message.dir === "in" : message.dir === "out";
    const call = ours ? this.calls.get(idKey(message.stream)) : undefined;
    if (call === undefined) return;
    const dir: StreamDir = message.dir;
    if ((dir === "out" ? call.output : call.input) === undefined) return;
    switch (message.kind) {
      case "malformed": {
        // $/stream/end and $/stream/error exist for input streams only: "out" names ours (13.5).
        const end = method === "$/stream/end" || method === "$/stream/error";
        this.protocolError(call, dir, end ? message.reason : `malformed ${method}: ${message.reason}`);
        return;
      }
      case "item": {
        const broken = call.output?.receiveItem(message.seq, message.value) ?? null;
        if (broken !== null) this.protocolError(call, dir, broken);
        return;
      }
      case "credit":
        if (call.input?.grant(message.add) === false) this.protocolError(call, dir, `credit of ${message.add} takes the credit above 1024`);
        return;
      default:
        return;
    }
  }

  /**
   * The response to our request `id` has arrived, `error` when it is an error response: the output
   * stream ends after its buffered items, the input stream closes (13.2, 13.6). Returns true when
   * the response is to be dropped (the call failed or was abandoned first).
   */
  answered(id: RequestId, error?: RemoteError): boolean {
    const key = idKey(id);
    if (this.dropped.delete(key)) return true;
    const call = this.calls.get(key);
    if (call === undefined) return false;
    this.calls.delete(key);
    call.output?.receiveEnd(error);
    call.input?.fail(streamError(ErrorCodes.StreamClosed, id, "in", `stream ${String(id)} (in) on ${this.channel} closed: the peer answered the request`));
    return false;
  }

  /**
   * Our request `id` ended without its response (the caller gave up or timed out, the channel
   * closed): its streams' steps raise `reason`, and its response, if it comes, is dropped.
   */
  abandon(id: RequestId, reason: Error): void {
    const key = idKey(id);
    const call = this.calls.get(key);
    if (call === undefined) return;
    this.calls.delete(key);
    this.dropped.add(key);
    call.output?.fail(reason);
    call.input?.fail(reason);
  }

  /** Ends the input stream of `call`: `$/stream/end`, or `$/stream/error` with `error`; nothing once it is closed. */
  endInput(call: CallStreams, error?: { code: number; message: string; data?: unknown }): void {
    const input = call.input;
    if (input === undefined || input.closed) return;
    const params = error === undefined ? { stream: call.id, dir: "in" } : { stream: call.id, dir: "in", error };
    void this.output.emit(error === undefined ? "$/stream/end" : "$/stream/error", params).catch(() => undefined);
    input.fail(streamError(ErrorCodes.StreamClosed, call.id, "in", `stream ${String(call.id)} (in) on ${this.channel} was already ended`));
  }

  /** Fails a call for breaking 13.3/13.4 (13.5): its streams fail, `$/cancelRequest` leaves, the caller's promise rejects. */
  private protocolError(call: CallStreams, dir: StreamDir, rule: string): void {
    const message = `stream ${String(call.id)} (${dir}) on ${this.channel}: ${rule}`;
    const error = streamError(ErrorCodes.StreamProtocolError, call.id, dir, message);
    const key = idKey(call.id);
    this.calls.delete(key);
    this.dropped.add(key);
    call.output?.fail(error);
    call.input?.fail(error);
    void this.output.emit("$/cancelRequest", { id: call.id }).catch(() => undefined);
    this.output.failCall(call.id, error);
  }
}
