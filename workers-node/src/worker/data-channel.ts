/**
 * The worker's data channel (PROTOCOL.md sections 2 and 7.3-7.4): a listening socket, the
 * `$/hello` gate on every connection, and one authenticated connection at a time.
 *
 * Each accepted connection gets its own {@link Channel}, sharing one handler table. Until its
 * first message has proved the token, an inbound filter holds the connection, and the verdict of
 * hello.ts decides: anything but a `$/hello` request with the right token and protocol is answered
 * (`-32003`, `-32602` or `-32007`) and the connection closed; a first frame declaring more than
 * 64 KiB closes it silently; a connection that says nothing is closed after the hello timeout.
 * The authenticated connection is the one `worker.data` calls and notifies through.
 */
import { MessagePackCodec } from "../codecs/msgpack.js";
import { PRE_HELLO_MAX_FRAME_SIZE, PROTOCOL_VERSION } from "../constants.js";
import { ChannelClosed, ErrorCodes, RemoteError } from "../errors.js";
import { LengthPrefixedFraming } from "../framing/length-prefixed.js";
import type { RequestId } from "../jsonrpc/messages.js";
import { JsonRpcProtocol } from "../jsonrpc/protocol.js";
import { Channel, type InboundItem } from "../channel/channel.js";
import {
  HandlerTable,
  refusedCall,
  type Disposable,
  type HandlerErrorPolicy,
  type NotificationHandler,
  type RequestHandler,
  type RequestHandlerOptions,
  type RequestOptions,
  type WireError,
} from "../channel/handlers.js";
import { StreamCall, type StreamOptions } from "../streams/call.js";
import { startTimer } from "../timeouts.js";
import { PipeServer } from "../transports/pipe-server.js";
import type { Transport } from "../transports/types.js";
import type { WorkerEndpoint } from "./endpoint.js";
import { helloVerdict } from "./hello.js";

/** What the data channel needs from the worker. */
export interface DataChannelOptions {
  readonly path: string;
  readonly token: string;
  readonly workerId: string | null;
  readonly maxFrameSize: number;
  /** The codec of every connection (hooks given by the program), or undefined for a plain one each. */
  readonly codec: MessagePackCodec | undefined;
  /** How long a connection may stay silent before `$/hello` (checked: >= 0; Infinity: for ever). */
  readonly helloTimeoutMs: number;
  readonly log: (message: string) => void;
  /** What a failed request handler is answered with, on every connection (PROTOCOL.md 4.10). */
  readonly handlerErrors: HandlerErrorPolicy;
  /** A connection was accepted (before its `$/hello`). Never rejects: the worker logs a failing hook. */
  readonly onConnected: () => Promise<void>;
  /** `$/hello` succeeded; runs before the response is written. Never rejects, as `onConnected`. */
  readonly onAuthenticated: () => Promise<void>;
}

/** The data channel: server, connections, and the endpoint `worker.data`. */
export class DataChannel implements WorkerEndpoint {
  private readonly handlers = new HandlerTable();
  private readonly server = new PipeServer({ unlinkOnListen: true });
  private readonly protocol = new JsonRpcProtocol();
  private readonly connections = new Set<Channel>();
  private active: Channel | null = null;
  private refusal: { code: number; message: string } | null = null;

  constructor(private readonly options: DataChannelOptions) {
    this.server.onConnection((transport) => this.accept(transport));
  }

  // ---- WorkerEndpoint -------------------------------------------------------------------------

  onRequest<P = unknown, R = unknown>(method: string, handler: RequestHandler<P, R>, options?: RequestHandlerOptions): Disposable {
    return this.handlers.onRequest(method, handler, options);
  }

  onNotification<P = unknown>(method: string, handler: NotificationHandler<P>): Disposable {
    return this.handlers.onNotification(method, handler);
  }

  request<R = unknown>(method: string, params?: unknown, options?: RequestOptions): Promise<R> {
    const channel = this.active;
    if (channel === null) return Promise.reject(refusedCall(options, notConnected()));
    return channel.request<R>(method, params, options);
  }

  stream(method: string, params?: Record<string, unknown>, options?: StreamOptions): StreamCall {
    const channel = this.active;
    if (channel === null) return new StreamCall(() => { throw refusedCall(options, notConnected()); });
    return channel.stream(method, params, options);
  }

  notify(method: string, params?: unknown): Promise<void> {
    const channel = this.active;
    if (channel === null) return Promise.reject(notConnected());
    return channel.notify(method, params);
  }

  /** True while a parent is connected and authenticated. */
  get connected(): boolean {
    return this.active !== null;
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  /** Listens on the data path (stale sockets removed, live ones and non-sockets refused). */
  listen(): Promise<void> {
    return this.server.listen(this.options.path);
  }

  /** From now on, every new request on any connection gets this error; new `$/hello`s too. */
  refuseRequests(code: number, message: string): void {
    this.refusal = { code, message };
    for (const channel of this.connections) channel.refuseRequests(code, message);
  }

  /** Resolves true once no data request runs, false after `timeoutMs`. */
  async whenIdle(timeoutMs: number): Promise<boolean> {
    const results = await Promise.all([...this.connections].map((channel) => channel.whenIdle(timeoutMs)));
    return results.every(Boolean);
  }

  /** Cancels running data requests (see Channel.cancelRunning). */
  async cancelRunning(graceMs: number): Promise<void> {
    await Promise.all([...this.connections].map((channel) => channel.cancelRunning(graceMs)));
  }

  /** Resolves once every frame written so far, on every connection, has been handed to the operating system. */
  async flushed(): Promise<void> {
    await Promise.all([...this.connections].map((channel) => channel.flushed()));
  }

  /** Closes every connection and the server, and removes the socket file. */
  async close(): Promise<void> {
    await Promise.all([...this.connections].map((channel) => channel.close()));
    await this.server.close();
  }

  /** The socket file this channel listens on (path and inode), or null before `listen`. */
  get socketFile(): { path: string; inode: number } | null {
    return this.server.socketFile;
  }

  /** Removes the socket file now, synchronously, if it is still ours (for the process 'exit' handler). */
  removeSocketFile(): void {
    this.server.removeSocketFile();
  }

  // ---- connections ----------------------------------------------------------------------------

  private accept(transport: Transport): void {
    const channel = new Channel({
      transport,
      framing: new LengthPrefixedFraming({ maxFrameSize: this.options.maxFrameSize }),
      codec: this.options.codec ?? new MessagePackCodec(),
      protocol: this.protocol,
      name: "data",
      handlers: this.handlers,
      handlerErrors: this.options.handlerErrors,
    });
    this.connections.add(channel);
    if (this.refusal !== null) channel.refuseRequests(this.refusal.code, this.refusal.message);
    // A stranger's first frame may not make us read more than 64 KiB, and gets no -32005 (D14).
    channel.guardFirstFrame(PRE_HELLO_MAX_FRAME_SIZE);

    // Infinity: a silent connection is never closed for its silence (startTimer sets no timer).
    const cancelHelloTimer = startTimer(
      () => {
        this.options.log(`data connection closed: no $/hello within ${this.options.helloTimeoutMs} ms`);
        void channel.close();
      },
      this.options.helloTimeoutMs,
      { unref: true },
    );

    channel.onError((error) => this.options.log(error.message));
    channel.onClose(() => {
      cancelHelloTimer();
      this.connections.delete(channel);
      if (this.active === channel) this.active = null;
    });

    const connected = this.options.onConnected();
    channel.setInboundFilter(async (item) => {
      await connected;
      cancelHelloTimer();
      channel.setInboundFilter(null);
      await this.admit(channel, item);
      return false;
    });
    channel.start();
  }

  /** Answers the first message of a connection per the `$/hello` verdict; keeps the connection or closes it. */
  private async admit(channel: Channel, item: InboundItem): Promise<void> {
    const verdict = helloVerdict({
      ...this.helloContext(),
      message: item.kind === "message" ? item.message : "undecodable",
      protocolIsFloat: item.kind === "message" && item.floatProtocol === true,
      firstFrame: true,
      authenticatedElsewhere: this.active !== null,
    });
    const reply = verdict.reply;
    if (verdict.authenticated && reply !== null && "result" in reply) {
      if (this.refusal !== null) return this.reject(channel, reply.id, this.refusal);
      this.active = channel;
      channel.allowOversizeCourtesy();
      channel.setReservedHandler("$/hello", (_params, context) => {
        const again = helloVerdict({ ...this.helloContext(), message: { kind: "request", id: context.id, method: "$/hello" }, firstFrame: false, authenticatedElsewhere: false });
        const error = again.reply !== null && "error" in again.reply ? again.reply.error : { code: ErrorCodes.InvalidRequest, message: "Invalid Request: already authenticated" };
        throw new RemoteError(error.code, error.message);
      });
      channel.setReservedHandler("$/shutdown", () => {
        throw new RemoteError(ErrorCodes.MethodNotFound, "$/shutdown is a control-channel method");
      });
      await this.options.onAuthenticated();
      await channel.sendResult(reply.id as RequestId, reply.result);
      return;
    }
    if (reply !== null && "error" in reply) return this.reject(channel, reply.id, reply.error);
    await channel.close();
  }

  private helloContext(): { token: string; supported: number[]; workerId: string | null; pid: number } {
    return { token: this.options.token, supported: [PROTOCOL_VERSION], workerId: this.options.workerId, pid: process.pid };
  }

  private async reject(channel: Channel, id: RequestId | null, error: WireError): Promise<void> {
    // The message never contains the token, right or wrong.
    this.options.log(`data connection refused: ${error.message}`);
    await channel.sendError(id, error);
    await channel.close();
  }
}

function notConnected(): ChannelClosed {
  return new ChannelClosed("data channel is not connected: no authenticated parent connection");
}
