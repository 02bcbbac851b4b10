/**
 * The worker's data channel (PROTOCOL.md sections 2 and 7.3-7.4): a listening socket, the
 * `$/hello` gate on every connection, and one authenticated connection at a time.
 *
 * Each accepted connection gets its own {@link Channel}, sharing one handler registry. Until its
 * first message has proved the token, an inbound filter holds the connection: anything but a
 * `$/hello` request with the right token and protocol is answered `-32003` (or `-32007`) and the
 * connection closed; a connection that says nothing is closed after the hello timeout. The
 * authenticated connection is the one `worker.data` calls and notifies through.
 */
import { timingSafeEqual } from "node:crypto";

import { MessagePackCodec } from "../codecs/msgpack.js";
import { PROTOCOL_VERSION } from "../constants.js";
import { ChannelClosed, ErrorCodes, describeError } from "../errors.js";
import { LengthPrefixedFraming } from "../framing/length-prefixed.js";
import { isMap, type RequestId } from "../jsonrpc/messages.js";
import { JsonRpcProtocol } from "../jsonrpc/protocol.js";
import { Channel, type InboundItem } from "../channel/channel.js";
import {
  HandlerRegistry,
  type Disposable,
  type NotificationHandler,
  type RequestHandler,
  type RequestOptions,
} from "../channel/handlers.js";
import { PipeServer } from "../transports/pipe-server.js";
import type { Transport } from "../transports/types.js";
import type { WorkerEndpoint } from "./endpoint.js";

/** What the data channel needs from the worker. */
export interface DataChannelOptions {
  readonly path: string;
  readonly token: string;
  readonly workerId: string | null;
  readonly maxFrameSize: number;
  readonly helloTimeoutMs: number;
  readonly log: (message: string) => void;
  /** A connection was accepted (before its `$/hello`). */
  readonly onConnected: () => Promise<void>;
  /** `$/hello` succeeded; runs before the response is written. */
  readonly onAuthenticated: () => Promise<void>;
}

/** The data channel: server, connections, and the endpoint `worker.data`. */
export class DataChannel implements WorkerEndpoint {
  private readonly handlers = new HandlerRegistry();
  private readonly server = new PipeServer({ unlinkOnListen: true });
  private readonly protocol = new JsonRpcProtocol();
  private readonly connections = new Set<Channel>();
  private active: Channel | null = null;
  private refusal: { code: number; message: string } | null = null;

  constructor(private readonly options: DataChannelOptions) {
    this.server.onConnection((transport) => this.accept(transport));
  }

  // ---- WorkerEndpoint -------------------------------------------------------------------------

  onRequest<P = unknown, R = unknown>(method: string, handler: RequestHandler<P, R>): Disposable {
    return this.handlers.onRequest(method, handler);
  }

  onNotification<P = unknown>(method: string, handler: NotificationHandler<P>): Disposable {
    return this.handlers.onNotification(method, handler);
  }

  request<R = unknown>(method: string, params?: unknown, options?: RequestOptions): Promise<R> {
    const channel = this.active;
    if (channel === null) return Promise.reject(notConnected());
    return channel.request<R>(method, params, options);
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

  /** Closes every connection and the server, and removes the socket file. */
  async close(): Promise<void> {
    await Promise.all([...this.connections].map((channel) => channel.close()));
    await this.server.close();
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
      codec: new MessagePackCodec(),
      protocol: this.protocol,
      name: "data",
      handlers: this.handlers,
    });
    this.connections.add(channel);
    if (this.refusal !== null) channel.refuseRequests(this.refusal.code, this.refusal.message);

    const helloTimer = setTimeout(() => {
      this.options.log(`data connection closed: no $/hello within ${this.options.helloTimeoutMs} ms`);
      void channel.close();
    }, this.options.helloTimeoutMs);
    helloTimer.unref();

    channel.onError((error) => this.options.log(error.message));
    channel.onClose(() => {
      clearTimeout(helloTimer);
      this.connections.delete(channel);
      if (this.active === channel) this.active = null;
    });

    const connected = this.options.onConnected().catch((error: unknown) => {
      this.options.log(`data connected hook failed: ${describeError(error)}`);
    });
    channel.setInboundFilter(async (item) => {
      await connected;
      const admitted = await this.admit(channel, item);
      if (admitted) {
        clearTimeout(helloTimer);
        channel.setInboundFilter(null);
      }
      return false;
    });
    channel.start();
  }

  /** Handles the first message of a connection; true once the connection is authenticated (and answered). */
  private async admit(channel: Channel, item: InboundItem): Promise<boolean> {
    if (item.kind !== "message" || item.message.kind !== "request" || item.message.method !== "$/hello") {
      const id = item.kind === "message" && "id" in item.message ? item.message.id : null;
      return this.reject(channel, id, ErrorCodes.Unauthorized, "unauthorized: the first message on a data connection must be a $/hello request");
    }
    const { id, params } = item.message;
    const hello = isMap(params) ? params : {};
    if (!this.tokenMatches(hello.token)) {
      return this.reject(channel, id, ErrorCodes.Unauthorized, "unauthorized: wrong or missing token");
    }
    if (hello.protocol !== PROTOCOL_VERSION) {
      return this.reject(
        channel,
        id,
        ErrorCodes.ProtocolVersionMismatch,
        `protocol version mismatch: worker speaks ${PROTOCOL_VERSION}, $/hello asked for ${describeValue(hello.protocol)}`,
        { supported: [PROTOCOL_VERSION] },
      );
    }
    if (this.refusal !== null) return this.reject(channel, id, this.refusal.code, this.refusal.message);
    if (this.active !== null) return this.reject(channel, id, ErrorCodes.Unauthorized, "unauthorized: data channel already connected");

    this.active = channel;
    try {
      await this.options.onAuthenticated();
    } catch (error) {
      this.options.log(`data ready hook failed: ${describeError(error)}`);
    }
    await channel.sendResult(id, { protocol: PROTOCOL_VERSION, workerId: this.options.workerId, pid: process.pid });
    return true;
  }

  private async reject(channel: Channel, id: RequestId | null, code: number, message: string, data?: unknown): Promise<false> {
    // The message never contains the token, right or wrong.
    this.options.log(`data connection rejected: ${message}`);
    await channel.sendError(id, data === undefined ? { code, message } : { code, message, data });
    await channel.close();
    return false;
  }

  /** Constant-time comparison over the bytes; a length difference is a mismatch (PROTOCOL.md 7.4). */
  private tokenMatches(candidate: unknown): boolean {
    const expected = Buffer.from(this.options.token, "utf8");
    const given = Buffer.from(typeof candidate === "string" ? candidate : "", "utf8");
    if (given.length !== expected.length) {
      // Same work as a comparison, then a mismatch: the time does not tell how close the guess was.
      timingSafeEqual(expected, expected);
      return false;
    }
    return timingSafeEqual(given, expected);
  }
}

function notConnected(): ChannelClosed {
  return new ChannelClosed("data channel is not connected: no authenticated parent connection");
}

function describeValue(value: unknown): string {
  return value === undefined ? "nothing" : JSON.stringify(typeof value === "bigint" ? String(value) : value) ?? String(value);
}
