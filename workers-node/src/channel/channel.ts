/**
 * A JSON-RPC 2.0 channel over one transport, framing and codec (PROTOCOL.md section 4).
 *
 * Theory of operation. Inbound: transport chunks go through the frame decoder; each frame is
 * decoded and classified, and the results are queued in the INBOX in stream order. The inbox is
 * drained in order: requests start their handler at once and run concurrently (a slow handler holds
 * nothing up), notifications run their handler, responses complete our pending requests. An
 * inbound filter (the data channel's `$/hello` gate) may hold the inbox while it works; the
 * transport is paused meanwhile. Outbound: every message is encoded and framed synchronously (so an
 * unencodable value fails before anything is written), then written through one promise chain that
 * waits for the transport, so frames never interleave and a slow reader slows the writers down.
 * A peer that sends without reading what we answer is stopped the same way: while more than
 * OUTBOX_HIGH_WATER_MARK bytes of frames wait in the outbox, the inbox is not drained and the
 * transport is not read, so the answers cannot pile up in memory; the peer's own writes block.
 */
import {
  ChannelClosed,
  ErrorCodes,
  FramingError,
  ProtocolError,
  RemoteError,
  RequestCancelled,
  IpcError,
  describeError,
  type CodecError,
} from "../errors.js";
import type { Codec } from "../codecs/types.js";
import type { Framing, FrameDecoder } from "../framing/types.js";
import type { ClassifiedMessage, RequestId } from "../jsonrpc/messages.js";
import type { JsonRpcProtocol } from "../jsonrpc/protocol.js";
import type { Transport } from "../transports/types.js";
import {
  HandlerRegistry,
  errorToWire,
  isReservedMethod,
  type Disposable,
  type HandlerTarget,
  type NotificationHandler,
  type RequestContext,
  type RequestHandler,
  type RequestOptions,
  type RpcPeer,
  type WireError,
} from "./handlers.js";
import { IncomingRequests, type RunningRequest } from "./incoming.js";
import { OutgoingRequests } from "./outgoing.js";
import { Outbox } from "./outbox.js";

/** The parts of a channel; see {@link ChannelBuilder}. */
export interface ChannelParts {
  readonly transport: Transport;
  readonly framing: Framing;
  readonly codec: Codec;
  readonly protocol: JsonRpcProtocol;
  /** For messages: "control", "data". */
  readonly name?: string;
  /** @internal Shared handlers (the data channel's successive connections). */
  readonly handlers?: HandlerRegistry;
}

/** One inbound item, in stream order. */
export type InboundItem =
  | { readonly kind: "message"; readonly message: ClassifiedMessage }
  | { readonly kind: "parse_error"; readonly error: CodecError }
  | { readonly kind: "framing_error"; readonly error: FramingError };

/** @internal Decides what happens to an inbound item before normal processing: true lets it through. */
export type InboundFilter = (item: InboundItem) => boolean | Promise<boolean>;

/** A JSON-RPC channel: register handlers, `start()`, then call and notify the peer. */
export class Channel implements RpcPeer, HandlerTarget {
  /** For messages: "control", "data" or "channel". */
  readonly name: string;
  private readonly transport: Transport;
  private readonly codec: Codec;
  private readonly protocol: JsonRpcProtocol;
  private readonly handlers: HandlerRegistry;
  private readonly decoder: FrameDecoder;
  private readonly outbox: Outbox;
  private readonly outgoing = new OutgoingRequests();
  private readonly incoming = new IncomingRequests();
  private readonly reserved = new Map<string, RequestHandler>();
  private readonly closeListeners: Array<(error?: IpcError) => void> = [];
  private readonly errorListeners: Array<(error: IpcError) => void> = [];
  private inbox: InboundItem[] = [];
  private held = false;
  private readingPaused = false;
  private filter: InboundFilter | null = null;
  private refusal: WireError | null = null;
  private state: "new" | "open" | "closed" = "new";
  private closing: Promise<void> | null = null;

  constructor(parts: ChannelParts) {
    this.name = parts.name ?? "channel";
    this.transport = parts.transport;
    this.codec = parts.codec;
    this.protocol = parts.protocol;
    this.handlers = parts.handlers ?? new HandlerRegistry();
    this.decoder = parts.framing.createDecoder();
    this.outbox = new Outbox(parts.transport, parts.framing, parts.codec, (full) => {
      // A peer that does not read what we send stops being read: backpressure instead of memory.
      this.updateReading();
      if (!full) this.drain();
    });
  }

  /** True once the channel is closed (by either side). */
  get closed(): boolean {
    return this.state === "closed";
  }

  onRequest<P = unknown, R = unknown>(method: string, handler: RequestHandler<P, R>): Disposable {
    return this.handlers.onRequest(method, handler);
  }

  onNotification<P = unknown>(method: string, handler: NotificationHandler<P>): Disposable {
    return this.handlers.onNotification(method, handler);
  }

  /** Called once when the channel closes; `error` tells why when it was not a clean end. */
  onClose(listener: (error?: IpcError) => void): void {
    this.closeListeners.push(listener);
  }

  /**
   * Called for every local problem: bad input from the peer (framing, codec, invalid messages),
   * dropped responses, failing notification handlers, responses that could not be written.
   */
  onError(listener: (error: IpcError) => void): void {
    this.errorListeners.push(listener);
  }

  /** Starts reading. Register handlers first: messages are dispatched from the first chunk on. */
  start(): void {
    if (this.state !== "new") return;
    this.state = "open";
    this.transport.open({
      data: (chunk) => this.receive(this.decoder.push(chunk)),
      end: () => {
        this.receive(this.decoder.end());
        void this.shutdown();
      },
      error: (error) => void this.shutdown(error),
    });
  }

  async request<R = unknown>(method: string, params?: unknown, options: RequestOptions = {}): Promise<R> {
    this.assertOpen();
    const id = this.outgoing.allocateId();
    const frame = this.outbox.encode(this.protocol.request(id, method, params));
    if (options.signal?.aborted) throw new RequestCancelled(`request ${method} cancelled by the caller before it was sent`);
    const result = this.outgoing.track(id, method, options, () => {
      // The caller stopped waiting: tell the peer (PROTOCOL.md 9.2). Best effort.
      this.notify("$/cancelRequest", { id }).catch(() => undefined);
    });
    this.outbox.write(frame).catch((error: unknown) => {
      this.outgoing.settle(id, { error: this.closedError(error) });
    });
    return (await result) as R;
  }

  async notify(method: string, params?: unknown): Promise<void> {
    this.assertOpen();
    const frame = this.outbox.encode(this.protocol.notification(method, params));
    await this.outbox.write(frame);
  }

  /** Closes the channel: pending requests fail with ChannelClosed, running handlers are aborted. */
  close(): Promise<void> {
    return this.shutdown();
  }

  // ---- internal API for the worker layer ------------------------------------------------------

  /** @internal Handles a reserved (`$/`) request method on this channel. */
  setReservedHandler(method: string, handler: RequestHandler): void {
    this.reserved.set(method, handler);
  }

  /** @internal Installs (or removes, with null) the inbound filter. */
  setInboundFilter(filter: InboundFilter | null): void {
    this.filter = filter;
  }

  /** @internal From now on, answers every new request with this error (shutdown: -32004). */
  refuseRequests(code: number, message: string): void {
    this.refusal = { code, message };
  }

  /** @internal Resolves true once no request but `except` runs, false after `timeoutMs`. */
  whenIdle(timeoutMs: number, except?: RequestId): Promise<boolean> {
    return this.incoming.whenIdle(timeoutMs, except);
  }

  /**
   * @internal Aborts every running request but `except`, gives the handlers `graceMs` to end
   * (a cancelled handler is answered -32002), then answers the rest -32002 itself.
   */
  async cancelRunning(graceMs: number, except?: RequestId): Promise<void> {
    for (const request of this.incoming.all(except)) {
      request.abort(new RequestCancelled("request cancelled: the worker is shutting down"));
    }
    await this.incoming.whenIdle(graceMs, except);
    const sends = this.incoming.all(except).map((request) => {
      if (request.answered) return Promise.resolve();
      request.answered = true;
      return this.sendError(request.id, { code: ErrorCodes.RequestCancelled, message: "request cancelled: the worker is shutting down" });
    });
    await Promise.all(sends);
  }

  /** @internal Sends a response. Never throws: a result that cannot be sent becomes an error response (4.9). */
  sendResult(id: RequestId, result: unknown): Promise<void> {
    return this.writeQuietly(this.outbox.resultFrame(this.protocol, id, result));
  }

  /** @internal Sends an error response. Never throws: undeliverable `data` is dropped. */
  sendError(id: RequestId | null, error: WireError): Promise<void> {
    return this.writeQuietly(this.outbox.errorFrame(this.protocol, id, error));
  }

  // ---- inbound --------------------------------------------------------------------------------

  private receive(events: ReturnType<FrameDecoder["push"]>): void {
    for (const event of events) {
      this.inbox.push(event.type === "error" ? { kind: "framing_error", error: event.error } : this.decodeFrame(event.frame));
    }
    this.drain();
  }

  private decodeFrame(frame: Uint8Array): InboundItem {
    let value: unknown;
    try {
      value = this.codec.decode(frame);
    } catch (error) {
      return { kind: "parse_error", error: error as CodecError };
    }
    return { kind: "message", message: this.protocol.classify(value) };
  }

  /** Reads from the transport unless the inbox is held by the filter or the outbox is full. */
  private updateReading(): void {
    const pause = this.held || this.outbox.isFull;
    if (pause === this.readingPaused || this.state === "closed") return;
    this.readingPaused = pause;
    if (pause) this.transport.pause();
    else this.transport.resume();
  }

  private drain(): void {
    while (!this.held && !this.outbox.isFull && this.inbox.length > 0 && this.state !== "closed") {
      const item = this.inbox.shift() as InboundItem;
      // Framing errors are about the stream, not a message: no filter sees them.
      const verdict = this.filter === null || item.kind === "framing_error" ? true : this.filter(item);
      if (verdict === true) this.process(item);
      else if (verdict !== false) {
        // The filter needs time (an async hook): hold everything behind this item, in order.
        this.held = true;
        this.updateReading();
        verdict
          .then((pass) => pass && this.state !== "closed" && this.process(item), (error: unknown) => this.report(error))
          .finally(() => {
            this.held = false;
            this.updateReading();
            this.drain();
          });
      }
    }
  }

  private process(item: InboundItem): void {
    if (item.kind === "framing_error") {
      this.onFramingError(item.error);
      return;
    }
    if (item.kind === "parse_error") {
      this.report(item.error);
      void this.sendError(null, { code: ErrorCodes.ParseError, message: `Parse error: ${item.error.message}` });
      return;
    }
    const message = item.message;
    switch (message.kind) {
      case "request":
        this.runRequest(message.id, message.method, message.params);
        return;
      case "notification":
        this.runNotification(message.method, message.params);
        return;
      case "response":
        if (!this.outgoing.settle(message.id, { result: message.result })) this.reportDropped(message.id);
        return;
      case "error_response": {
        const error = new RemoteError(message.code, message.message, message.data);
        if (message.id === null || !this.outgoing.settle(message.id, { error })) {
          this.report(new RemoteError(message.code, `${this.name} channel: peer sent an error response for id ${String(message.id)}: ${message.message}`, message.data));
        }
        return;
      }
      case "invalid":
        if (message.reply) {
          void this.sendError(message.id, { code: message.code, message: `Invalid Request: ${message.reason}` });
        } else if (message.id === null || !this.outgoing.settle(message.id, { error: this.invalidResponse(message.reason) })) {
          this.report(this.invalidResponse(message.reason));
        }
        return;
    }
  }

  private onFramingError(error: FramingError): void {
    this.report(error);
    if (error.kind === "line_too_long" || error.kind === "frame_too_large") {
      void this.sendError(null, { code: ErrorCodes.MessageTooLarge, message: error.message });
    }
    // A length-prefixed stream cannot be resynchronized after an error (PROTOCOL.md 2.2, 2.3).
    if (this.decoder.failed) void this.outbox.idle().then(() => this.shutdown(error));
  }

  private runRequest(id: RequestId, method: string, params: unknown): void {
    if (this.refusal !== null) {
      void this.sendError(id, this.refusal);
      return;
    }
    const handler =
      this.reserved.get(method) ?? (isReservedMethod(method) ? builtinRequests.get(method) : this.handlers.requestHandler(method));
    if (handler === undefined) {
      void this.sendError(id, { code: ErrorCodes.MethodNotFound, message: `Method not found: ${method}` });
      return;
    }
    const request = this.incoming.begin(id);
    if (request === null) {
      void this.sendError(id, { code: ErrorCodes.InvalidRequest, message: `Invalid Request: id ${String(id)} is already used by a running request` });
      return;
    }
    const context = new HandlerContext(request, method, this);
    // A handler that returns a value (not a promise) is answered at once, without a round through
    // the microtask queue; the response still goes through the outbox, in order.
    let outcome: unknown;
    try {
      outcome = handler(params, context);
    } catch (error) {
      void this.answer(request, false, error);
      return;
    }
    if (isThenable(outcome)) {
      Promise.resolve(outcome).then(
        (result: unknown) => this.answer(request, true, result),
        (error: unknown) => this.answer(request, false, error),
      );
    } else {
      void this.answer(request, true, outcome);
    }
  }

  /** Sends the response of a finished handler (unless one was sent already) and stops tracking it. */
  private async answer(request: RunningRequest, succeeded: boolean, value: unknown): Promise<void> {
    try {
      if (!request.answered) {
        request.answered = true;
        if (succeeded) {
          await this.sendResult(request.id, value);
        } else {
          const wire: WireError = request.aborted ? { code: ErrorCodes.RequestCancelled, message: "request cancelled" } : errorToWire(value);
          await this.sendError(request.id, wire);
        }
      }
    } finally {
      this.incoming.end(request);
    }
  }

  private runNotification(method: string, params: unknown): void {
    if (method === "$/cancelRequest") {
      const id = (params as { id?: unknown } | undefined)?.id;
      if (typeof id === "string" || typeof id === "number" || typeof id === "bigint") this.incoming.cancel(id);
      return;
    }
    // Unknown $/ notifications are ignored (PROTOCOL.md 11.2); so are notifications without a handler.
    if (isReservedMethod(method)) return;
    const handler = this.handlers.notificationHandler(method);
    if (handler === undefined) return;
    void (async () => {
      try {
        await handler(params, { method, peer: this });
      } catch (error) {
        this.report(new RemoteError(ErrorCodes.HandlerError, `${this.name} channel: notification handler for ${method} failed: ${describeError(error)}`));
      }
    })();
  }

  // ---- outbound and lifecycle -----------------------------------------------------------------

  private writeQuietly(frame: Uint8Array | IpcError): Promise<void> {
    if (frame instanceof IpcError) {
      this.report(frame);
      return Promise.resolve();
    }
    return this.outbox.write(frame).catch((error: unknown) => {
      if (this.state !== "closed") this.report(error);
    });
  }

  private shutdown(error?: IpcError): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.state = "closed";
    this.inbox = [];
    const reason = error === undefined ? `${this.name} channel closed` : `${this.name} channel closed: ${error.message}`;
    this.outgoing.failAll(reason);
    for (const request of this.incoming.all()) {
      request.answered = true;
      request.abort(new ChannelClosed(reason));
    }
    this.closing = this.transport.close().then(() => {
      for (const listener of this.closeListeners) listener(error);
    });
    return this.closing;
  }

  private assertOpen(): void {
    if (this.state === "closed") throw new ChannelClosed(`${this.name} channel is closed`);
  }

  private closedError(error: unknown): unknown {
    return this.state === "closed" ? new ChannelClosed(`${this.name} channel closed`) : error;
  }

  private invalidResponse(reason: string): IpcError {
    return new ProtocolError(`${this.name} channel: peer sent an invalid response: ${reason}`);
  }

  private reportDropped(id: RequestId): void {
    this.report(new ProtocolError(`${this.name} channel: dropped a response for id ${String(id)}, which matches no pending request`));
  }

  private report(error: unknown): void {
    const ipcError = error instanceof IpcError ? error : new IpcError(describeError(error), { cause: error });
    for (const listener of this.errorListeners) listener(ipcError);
  }
}

/** What a request handler gets besides its params; its `signal` is made on first use. */
class HandlerContext implements RequestContext {
  readonly #request: RunningRequest;
  readonly id: RequestId;

  constructor(
    request: RunningRequest,
    readonly method: string,
    readonly peer: RpcPeer,
  ) {
    this.#request = request;
    this.id = request.id;
  }

  get signal(): AbortSignal {
    return this.#request.signal;
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null && (typeof value === "object" || typeof value === "function") && typeof (value as { then?: unknown }).then === "function"
  );
}

/** Reserved requests every receiver answers (PROTOCOL.md 8.6). */
const builtinRequests = new Map<string, RequestHandler>([["$/ping", () => ({})]]);
