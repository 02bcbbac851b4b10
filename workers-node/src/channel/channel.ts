/**
 * A JSON-RPC 2.0 channel over one transport, framing and codec (PROTOCOL.md section 4).
 *
 * Theory of operation. Inbound: transport chunks go through the frame decoder; each frame is
 * decoded and classified, and the results are queued in the INBOX in stream order (inbox.ts). The
 * inbox is drained in order: requests start their handler at once and run concurrently (a slow
 * handler holds nothing up), notifications queue for their handler, which runs one at a time in
 * arrival order (dispatch.ts), responses complete our pending requests. While the `$/hello` filter
 * works, while a notification's handler queue is full, or while too many answers wait in the
 * outbox (a peer that sends without reading what we answer), the inbox is not drained and the
 * transport is not read (PROTOCOL.md 4.5): such a peer is slowed down instead of filling memory.
 * After a fatal framing error (a frame over the limit) nothing more is read: the connection is
 * cut, after at most one `-32005`. Outbound: every message is encoded and framed synchronously (so
 * an unencodable value fails before anything is written: frame-encoder.ts), then written in order
 * through the outbox, which waits for the transport, so frames never interleave and a slow reader
 * slows the writers down. Our requests and notifications wait for room in the outbox before they
 * are even encoded (PROTOCOL.md 2.6, 4.5; outbox-room.ts), and one whose caller gives up while its
 * frame still waits in the outbox is taken back, never sent. Nothing else that waits to be written
 * stops the reader: a peer blocked on writing to us reads again only once we read what it wrote.
 */
import { ChannelClosed, ErrorCodes, IpcError, RemoteError, RequestCancelled, describeError } from "../errors.js";
import type { Codec } from "../codecs/types.js";
import type { Framing } from "../framing/types.js";
import type { RequestId } from "../jsonrpc/messages.js";
import type { JsonRpcProtocol } from "../jsonrpc/protocol.js";
import type { Transport } from "../transports/types.js";
import { Dispatcher } from "./dispatch.js";
import {
  HandlerTable,
  checkRequestOptions,
  type Disposable,
  type HandlerErrorPolicy,
  type HandlerTarget,
  type NotificationHandler,
  type RequestHandler,
  type RequestHandlerOptions,
  type RequestOptions,
  type RpcPeer,
  type WireError,
} from "./handlers.js";
import { FrameEncoder, type Frame } from "./frame-encoder.js";
import { Inbox, type MessageOrParseError } from "./inbox.js";
import type { InboundFilter } from "./inbound.js";
import { IncomingRequests } from "./incoming.js";
import { OutgoingRequests } from "./outgoing.js";
import { Outbox, WRITTEN } from "./outbox.js";
import { sendWhenRoom, type SendOptions } from "./outbox-room.js";
import { StreamCall, requestWithInput, type Caller, type StreamOptions } from "../streams/call.js";
import { RequesterStreams } from "../streams/requester.js";

export type { InboundItem } from "./inbound.js";

/** The parts of a channel; see {@link ChannelBuilder}. */
export interface ChannelParts {
  readonly transport: Transport;
  readonly framing: Framing;
  readonly codec: Codec;
  readonly protocol: JsonRpcProtocol;
  /** For messages: "control", "data". */
  readonly name?: string | undefined;
  /** @internal Shared handlers (the data channel's successive connections). */
  readonly handlers?: HandlerTable | undefined;
  /** What a failed request handler is answered with (PROTOCOL.md 4.10); default: the stack is sent, nothing logged. */
  readonly handlerErrors?: HandlerErrorPolicy | undefined;
}

/** A JSON-RPC channel: register handlers, `start()`, then call and notify the peer. */
export class Channel implements RpcPeer, HandlerTarget {
  /** For messages: "control", "data" or "channel". */
  readonly name: string;
  private readonly transport: Transport;
  private readonly protocol: JsonRpcProtocol;
  private readonly handlers: HandlerTable;
  private readonly frames: FrameEncoder;
  private readonly outbox: Outbox;
  private readonly inbox: Inbox;
  private readonly outgoing = new OutgoingRequests();
  private readonly incoming = new IncomingRequests();
  private readonly dispatcher: Dispatcher;
  /** The streams of our requests (PROTOCOL.md 13), and how they send. */
  private readonly caller: Caller;
  private readonly closeListeners: Array<(error?: IpcError) => void> = [];
  private readonly errorListeners: Array<(error: IpcError) => void> = [];
  private state: "new" | "open" | "closed" = "new";
  private closing: Promise<void> | null = null;

  constructor(parts: ChannelParts) {
    this.name = parts.name ?? "channel";
    this.transport = parts.transport;
    this.protocol = parts.protocol;
    this.handlers = parts.handlers ?? new HandlerTable();
    this.dispatcher = new Dispatcher(this.name, this, this.incoming, this.handlers, {
      sendResult: (id, result) => this.sendResult(id, result),
      sendError: (id, error) => this.sendError(id, error),
      emit: (method, params) => this.emit(method, params),
      report: (error) => this.report(error),
      notificationTaken: () => this.inbox.notificationTaken(),
    });
    if (parts.handlerErrors !== undefined) this.dispatcher.handlerErrors = parts.handlerErrors;
    const streams = new RequesterStreams(this.name, {
      emit: (method, params) => this.emit(method, params),
      failCall: (id, error) => this.outgoing.settle(id, { error }),
    });
    this.dispatcher.calls = streams;
    this.caller = { send: (method, params, options) => this.send(method, params, options), streams };
    this.frames = new FrameEncoder(parts.framing, parts.codec);
    this.outbox = new Outbox(parts.transport, this.frames, (full) => {
      // A peer that does not read our answers stops being read: backpressure instead of memory.
      this.inbox.updateReading();
      if (!full) this.inbox.drain();
    });
    this.inbox = new Inbox(parts.framing.createDecoder(), parts.transport, parts.codec, parts.protocol, this.outbox, this.dispatcher, {
      process: (item) => this.process(item),
      report: (error) => this.report(error),
      sendError: (id, error) => this.sendError(id, error),
      shutdown: (error, abort) => this.shutdown(error, abort),
    });
  }

  /** True once the channel is closed (by either side). */
  get closed(): boolean {
    return this.state === "closed";
  }

  onRequest<P = unknown, R = unknown>(method: string, handler: RequestHandler<P, R>, options?: RequestHandlerOptions): Disposable {
    return this.handlers.onRequest(method, handler, options);
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
      data: (chunk) => this.inbox.read(chunk),
      end: () => {
        this.inbox.end();
        void this.shutdown();
      },
      error: (error) => void this.shutdown(error),
    });
  }

  async request<R = unknown>(method: string, params?: unknown, options: RequestOptions = {}): Promise<R> {
    checkRequestOptions(options);
    if (options.input !== undefined) return (await requestWithInput(this.caller, method, params, options.input, options)) as R;
    if (!this.outbox.hasRoom) return (await this.sendWhenRoom(method, params, options)) as R;
    return (await this.send(method, params, options).answer) as R;
  }

  /** Sends a request once the outbox has room for it (outbox-room.ts): its params are encoded only then. */
  private sendWhenRoom(method: string, params: unknown, options: RequestOptions): Promise<unknown> {
    return sendWhenRoom(this.outbox, method, options, () => this.assertOpen(), (sendOptions) => this.send(method, params, sendOptions).answer);
  }

  stream(method: string, params?: Record<string, unknown>, options: StreamOptions = {}): StreamCall {
    return StreamCall.of(this.caller, method, params, options);
  }

  /**
   * Sends a request; its answer settles the returned promise (throws if it cannot be sent).
   * `waitedMs`: how long of its timeout it already spent waiting for room.
   */
  private send(method: string, params: unknown, options: SendOptions): { id: number; answer: Promise<unknown> } {
    this.assertOpen();
    const id = this.outgoing.allocateId();
    const frame = this.frames.encodeOutgoing(this.protocol.request(id, method, params), "request");
    if (options.signal?.aborted) throw new RequestCancelled(`request ${method} cancelled by the caller before it was sent`);
    let written = WRITTEN;
    const answer = this.outgoing.track(id, method, options, () => {
      // The caller stopped waiting. Still queued: taken back, the peer never sees it. Else the
      // peer has it, or will (a frame the transport took goes whole): tell it (PROTOCOL.md 9.2).
      const queuedBefore = this.outbox.withdraw(written);
      if (queuedBefore !== null) return { sent: false, queuedBefore };
      this.notify("$/cancelRequest", { id }).catch(() => undefined); // best effort
      return { sent: true };
    });
    written = this.outbox.write(frame);
    if (written !== WRITTEN) {
      written.catch((error: unknown) => {
        this.outgoing.settle(id, { error: this.closedError(error) });
      });
    }
    return { id, answer };
  }

  async notify(method: string, params?: unknown): Promise<void> {
    this.assertOpen();
    // Encoded only once the outbox has room (PROTOCOL.md 4.5); checked again right before the
    // encode, with no await in between (see outbox-room.ts).
    while (!this.outbox.hasRoom) {
      await this.outbox.room();
      this.assertOpen();
    }
    const frame = this.frames.encodeOutgoing(this.protocol.notification(method, params), "notification");
    await this.outbox.write(frame);
  }

  /**
   * Sends a stream notification (PROTOCOL.md 13.2): encoded now, throwing if it cannot be, with an
   * item over the peer's limit told as the notification it is (12.1); resolves once written.
   */
  private emit(method: string, params: Record<string, unknown>): Promise<void> {
    return this.outbox.write(this.frames.encodeOutgoing(this.protocol.notification(method, params), "notification"));
  }

  /** Closes the channel: pending requests fail with ChannelClosed, running handlers are aborted. */
  close(): Promise<void> {
    return this.shutdown();
  }

  // ---- internal API for the worker layer ------------------------------------------------------

  /** @internal Handles a reserved (`$/`) request method on this channel. */
  setReservedHandler(method: string, handler: RequestHandler): void {
    this.dispatcher.setReservedHandler(method, handler);
  }

  /** @internal Handles a reserved (`$/`) notification method on this channel. */
  setReservedNotificationHandler(method: string, handler: NotificationHandler): void {
    this.dispatcher.setReservedNotificationHandler(method, handler);
  }

  /**
   * @internal Before `$/hello` (D14): the first frame may declare at most `limit` bytes, and a
   * frame over the limit closes the connection silently, until {@link allowOversizeCourtesy}.
   */
  guardFirstFrame(limit: number): void {
    this.inbox.guardFirstFrame(limit);
  }

  /** @internal The peer is authenticated: a frame over the limit gets one `-32005` before the close (D7). */
  allowOversizeCourtesy(): void {
    this.inbox.allowOversizeCourtesy();
  }

  /** @internal Resolves once every frame written so far has been handed to the operating system. */
  flushed(): Promise<void> {
    return this.outbox.idle().then(() => this.transport.flush());
  }

  /** @internal Resolves once request `id` (of the peer) has been answered, at once if it is not running. */
  whenAnswered(id: RequestId): Promise<void> {
    return this.incoming.whenEnded(id);
  }

  /** @internal Installs (or removes, with null) the inbound filter. */
  setInboundFilter(filter: InboundFilter | null): void {
    this.inbox.filter = filter;
  }

  /** @internal From now on, answers every new request with this error (shutdown: -32004). */
  refuseRequests(code: number, message: string): void {
    this.dispatcher.refuseRequests({ code, message });
  }

  /** @internal Resolves true once no request but `except` runs, false after `timeoutMs`. */
  whenIdle(timeoutMs: number, except?: RequestId): Promise<boolean> {
    return this.incoming.whenIdle(timeoutMs, except);
  }

  /**
   * @internal Aborts every running request but `except`, gives the handlers `graceMs` to end
   * (a cancelled handler is answered -32002), then answers the rest -32002 itself.
   */
  cancelRunning(graceMs: number, except?: RequestId): Promise<void> {
    return this.dispatcher.cancelRunning(graceMs, except);
  }

  /** @internal Sends a response. Never throws: a result that cannot be sent becomes an error response (4.9). */
  sendResult(id: RequestId, result: unknown): Promise<void> {
    return this.writeQuietly(this.frames.resultFrame(this.protocol, id, result));
  }

  /** @internal Sends an error response. Never throws: one that cannot be sent becomes -32005 or -32603 (4.9). */
  sendError(id: RequestId | null, error: WireError): Promise<void> {
    return this.writeQuietly(this.frames.errorFrame(this.protocol, id, error));
  }

  // ---- inbound --------------------------------------------------------------------------------

  /** Processes a message or a parse error (framing errors are the inbox's). */
  private process(item: MessageOrParseError): void {
    if (item.kind === "parse_error") {
      // An answer to one of our requests that does not decode fails that request now, instead of
      // letting it wait for its timeout; a response is never answered (PROTOCOL.md 4.8).
      const answerId = item.error.answerId;
      if (answerId !== undefined && this.outgoing.failUndecodable(answerId, item.error, this.name)) return;
      this.report(item.error);
      // The id, when the message was readable but refused for its content (PROTOCOL.md 4.8, D10).
      void this.sendError(item.error.recoveredId ?? null, { code: ErrorCodes.ParseError, message: `Parse error: ${item.error.message}` });
      return;
    }
    const message = item.message;
    switch (message.kind) {
      case "request":
        this.dispatcher.request(message.id, message.method, message.params, item.floatMembers);
        return;
      case "notification":
        this.dispatcher.notification(message.method, message.params, item.size, item.floatMembers);
        return;
      case "invalid":
        if (message.reply) {
          void this.sendError(message.id, { code: message.code, message: `Invalid Request: ${message.reason}` });
          return;
        }
        break; // an invalid response: it fails the request it answers
      case "response":
      case "error_response":
        // The end of its streams, if any, before its caller sees it; dropped after a stream failed it (13.5).
        if (message.id !== null && this.caller.streams.answered(message.id, message.kind === "error_response" ? new RemoteError(message.code, message.message, message.data) : undefined)) return;
        break;
    }
    const unclaimed = this.outgoing.complete(message, this.name);
    if (unclaimed !== null) this.report(unclaimed);
  }

  // ---- outbound and lifecycle -----------------------------------------------------------------

  /** Writes a response; resolves (never rejects) once written, {@link WRITTEN} when that was at once. */
  private writeQuietly(frame: Frame | IpcError): Promise<void> {
    if (frame instanceof IpcError) {
      this.report(frame);
      return WRITTEN;
    }
    const written = this.outbox.writeAnswer(frame);
    if (written === WRITTEN) return written;
    return written.catch((error: unknown) => {
      if (this.state !== "closed") this.report(error);
    });
  }

  /** Closes the channel; `abort` cuts the transport at once, without flushing or reading more. */
  private shutdown(error?: IpcError, abort = false): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.state = "closed";
    this.inbox.close();
    this.outbox.close();
    const reason = error === undefined ? `${this.name} channel closed` : `${this.name} channel closed: ${error.message}`;
    this.outgoing.failAll(reason);
    for (const request of this.incoming.all()) {
      request.answered = true;
      request.abort(new ChannelClosed(reason));
    }
    const closed = abort && this.transport.abort !== undefined ? this.transport.abort() : this.transport.close();
    const closing = closed.then(() => {
      for (const listener of this.closeListeners) listener(error);
    });
    this.closing = closing;
    return closing;
  }

  private assertOpen(): void {
    if (this.state === "closed") throw new ChannelClosed(`${this.name} channel is closed`);
  }

  private closedError(error: unknown): unknown {
    return this.state === "closed" ? new ChannelClosed(`${this.name} channel closed`) : error;
  }

  private report(error: unknown): void {
    const ipcError = error instanceof IpcError ? error : new IpcError(describeError(error), { cause: error });
    for (const listener of this.errorListeners) listener(ipcError);
  }
}

