/**
 * The high-level entry point: everything the worker side of PROTOCOL.md does, in one object.
 *
 * ```ts
 * const worker = new Worker();
 * worker.control.onRequest("getStatus", () => ({ status: "running" }));
 * worker.data.onRequest("sum", ({ values }: { values: number[] }) => values.reduce((a, b) => a + b, 0));
 * await worker.start();
 * ```
 *
 * Life cycle: the constructor reads the environment (removing the token from it) and takes stdout
 * over (the program's own stdout writes go to stderr from then on). `start()` opens the control
 * channel on stdio, listens on `ASPECT_IPC_DATA_PATH` when set, and sends `$/ready`. The worker
 * then serves until `$/shutdown`, `shutdown()`, stdin EOF, a broken stdout, the parent's death,
 * SIGTERM or SIGINT (the {@link ShutdownReason}s); each of these closes the data channel, removes
 * the socket file and exits the process (PROTOCOL.md 8.1-8.4). The hooks (hooks.ts) mark the way.
 *
 * `$/shutdown` answers its `null` only once every request in flight on either channel has been
 * answered (D3). Stdin EOF and signals exit within 200 ms, whatever the handlers do (D4); stdin EOF
 * means the parent is gone, and the worker then also ends the rest of its process group (D19). A
 * handler that blocks the event loop with synchronous code delays all of this until it returns,
 * except after the parent's death, which a watchdog thread handles (watchdog.ts; it starts once
 * `$/ready` is written, so that it never delays start-up).
 */
import { JsonCodec } from "../codecs/json.js";
import type { MessagePackCodec } from "../codecs/msgpack.js";
import { Channel } from "../channel/channel.js";
import type { Disposable, HandlerErrorPolicy, NotificationHandler, RequestContext, RequestHandler, RequestHandlerOptions } from "../channel/handlers.js";
import {
  DEFAULT_HELLO_TIMEOUT_MS,
  DEFAULT_MAX_LINE_LENGTH,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  Env,
  PROTOCOL_VERSION,
  SDK_NAME,
  SDK_VERSION,
} from "../constants.js";
import { ErrorCodes, IpcError, StartupError, describeError } from "../errors.js";
import { LineDelimitedFraming } from "../framing/line-delimited.js";
import type { RequestId } from "../jsonrpc/messages.js";
import { JsonRpcProtocol } from "../jsonrpc/protocol.js";
import { stdioTransport } from "../transports/socket-transport.js";
import type { StreamTransport } from "../transports/stream-transport.js";
import { AbsentDataChannel } from "./absent-data.js";
import { DataChannel } from "./data-channel.js";
import type { WorkerEndpoint } from "./endpoint.js";
import { readEnvironment, type WorkerEnvironment } from "./environment.js";
import type { ShutdownReason, WorkerHooks } from "./hooks.js";
import { signalGroup, watchParent } from "./process-group.js";
import { shutdownTimeoutMs } from "./shutdown-params.js";
import { SignalGuard } from "./signals.js";
import { startWatchdog } from "./watchdog.js";
import { checkDuration, withTimeout } from "../timeouts.js";

/** Options of {@link Worker}. */
export interface WorkerOptions {
  hooks?: WorkerHooks | undefined;
  /**
   * How long a data connection may stay silent before `$/hello`, in milliseconds; default 10 s.
   * A number >= 0; Infinity: a silent connection is never closed for its silence.
   */
  helloTimeoutMs?: number | undefined;
  /**
   * How long shutdown waits for in-flight handlers when `$/shutdown` gives no timeout (and
   * `shutdown()` when called without one), in milliseconds; default 5 s. A number >= 0; Infinity:
   * it waits for them however long they take.
   */
  shutdownTimeoutMs?: number | undefined;
  /** Control channel line limit, both directions; default 1 MiB. */
  maxLineLength?: number | undefined;
  /** Where the SDK's own diagnostics go; default stderr, prefixed "aspect-ipc: ". */
  log?: ((message: string) => void) | undefined;
  /** The environment to read (the token is removed from it); default `process.env`. */
  env?: NodeJS.ProcessEnv | undefined;
  /** Write a failed request handler's stack to `log` (stderr); default true (PROTOCOL.md 4.10). */
  logHandlerErrors?: boolean | undefined;
  /** The control channel's codec, e.g. a `JsonCodec` with hooks; default `new JsonCodec()`. */
  controlCodec?: JsonCodec | undefined;
  /**
   * The data channel's codec, e.g. `new MessagePackCodec({ encodeHook, decodeHook })`, used by
   * every data connection; default a plain `MessagePackCodec` per connection.
   */
  dataCodec?: MessagePackCodec | undefined;
}

/** `$/shutdown`: how long cancelled handlers get to end on their own before the worker answers for them. */
const CANCEL_GRACE_MS = 250;
/** Stdin EOF and signals: the same, within the exit budget. */
const EXIT_GRACE_MS = 50;
/** How long closing the data channel, and flushing stdout, may each take at exit. */
const EXIT_FLUSH_MS = 50;
/** The worker exits this long after stdin EOF or a signal at the latest (D4 says 200 ms). */
const EXIT_BUDGET_MS = 150;

/** A worker process: control on stdio, data on a Unix socket. Create one per process. */
export class Worker {
  /** Handlers and calls on the control channel (stdio, JSON). */
  readonly control: WorkerEndpoint;
  /** Handlers and calls on the data channel (socket, MessagePack). */
  readonly data: WorkerEndpoint;
  /** The data path this worker listens on, or null for a control-only worker. */
  readonly dataPath: string | null;
  /** `ASPECT_IPC_WORKER_ID`, or null. */
  readonly workerId: string | null;

  private readonly hooks: WorkerHooks;
  private readonly log: (message: string) => void;
  private readonly shutdownTimeoutMs: number;
  private readonly controlChannel: Channel;
  private readonly stdio: StreamTransport;
  private readonly dataChannel: DataChannel | null;
  private readonly environmentError: StartupError | null;
  private readonly signals: SignalGuard;
  private started = false;
  private readySent = false;
  private draining: Promise<void> | null = null;
  private stoppingNow: Promise<void> | null = null;
  private parentWatch: { stop(): void } | null = null;
  private exiting = false;
  private shutdownBegun = false;

  /**
   * Reads the environment and takes stdout over (see the class comment); starts nothing.
   * @throws {TypeError} or {RangeError} naming the option, for a `helloTimeoutMs` or
   *   `shutdownTimeoutMs` that is not a number of milliseconds >= 0 (checked before anything else
   *   happens: nothing is taken over).
   */
  constructor(options: WorkerOptions = {}) {
    // Explicit undefined is absent; null is not (the types say number).
    if (options.helloTimeoutMs !== undefined) checkDuration("helloTimeoutMs", options.helloTimeoutMs);
    if (options.shutdownTimeoutMs !== undefined) checkDuration("shutdownTimeoutMs", options.shutdownTimeoutMs);
    this.hooks = options.hooks ?? {};
    this.log = options.log ?? ((message) => process.stderr.write(`aspect-ipc: ${message}\n`));
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;

    let environment: WorkerEnvironment | null = null;
    let environmentError: StartupError | null = null;
    try {
      environment = readEnvironment(options.env ?? process.env);
    } catch (error) {
      environmentError = error instanceof StartupError ? error : new StartupError(describeError(error));
    }
    this.environmentError = environmentError;
    this.dataPath = environment?.dataPath ?? null;
    this.workerId = environment?.workerId ?? null;

    this.stdio = stdioTransport();
    this.controlChannel = new Channel({
      transport: this.stdio,
      framing: new LineDelimitedFraming({ maxLineLength: lineLimit(options, environment) }),
      codec: options.controlCodec ?? new JsonCodec(),
      protocol: new JsonRpcProtocol(),
      name: "control",
      handlerErrors: this.handlerErrors("control", options, environment),
    });
    this.control = this.controlChannel;

    if (environment?.dataPath != null && environment.token !== null) {
      this.dataChannel = new DataChannel({
        path: environment.dataPath,
        token: environment.token,
        workerId: environment.workerId,
        maxFrameSize: environment.maxFrameSize,
        codec: options.dataCodec,
        helloTimeoutMs: options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS,
        log: this.log,
        handlerErrors: this.handlerErrors("data", options, environment),
        onConnected: () => this.runHook("dataConnected", () => this.hooks.dataConnected?.()),
        onAuthenticated: async () => {
          // A failing dataReady is logged, and ready still runs.
          await this.runHook("dataReady", () => this.hooks.dataReady?.());
          await this.announceReady();
        },
      });
      this.data = this.dataChannel;
    } else {
      this.dataChannel = null;
      this.data = new AbsentDataChannel();
    }
    this.signals = new SignalGuard(() => this.stopNow("signal"));
  }

  /** Stacks sent unless the parent said `ASPECT_IPC_TRACEBACKS=0`; failures logged unless `logHandlerErrors: false`. */
  private handlerErrors(channel: string, options: WorkerOptions, environment: WorkerEnvironment | null): HandlerErrorPolicy {
    const sendTraceback = environment?.sendTracebacks ?? true;
    if (options.logHandlerErrors === false) return { sendTraceback };
    const onFailure = (method: string, error: unknown): void => {
      const text = error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : String(error);
      this.log(`'${method}' on the ${channel} channel failed:\n${text}`);
    };
    return { sendTraceback, onFailure };
  }

  /** Registers a request handler on both channels, with its options (`inputWindow`). */
  onRequest<P = unknown, R = unknown>(method: string, handler: RequestHandler<P, R>, options?: RequestHandlerOptions): Disposable {
    return both(this.control.onRequest(method, handler, options), this.data.onRequest(method, handler, options));
  }

  /** Registers a notification handler on both channels. */
  onNotification<P = unknown>(method: string, handler: NotificationHandler<P>): Disposable {
    return both(this.control.onNotification(method, handler), this.data.onNotification(method, handler));
  }

  /**
   * Starts serving: control channel, data server, `$/ready`. Resolves once `$/ready` is written.
   * On a start-up error (invalid environment, data path in use or not a socket) it writes the
   * reason to stderr and exits the process with code 2, as PROTOCOL.md sections 5 and 7.3 require.
   */
  async start(): Promise<void> {
    if (this.started) throw new IpcError("Worker.start() was already called");
    this.started = true;
    if (this.environmentError !== null) return this.failStartup(this.environmentError);

    process.on("exit", () => this.dataChannel?.removeSocketFile());
    this.signals.install();
    this.controlChannel.onError((error) => this.log(error.message));
    this.controlChannel.onClose((error) => void this.stopNow(error === undefined ? "stdin_eof" : "stdout_closed"));
    this.controlChannel.setReservedHandler("$/shutdown", (params, context) => this.onShutdownRequest(params, context));
    this.controlChannel.setReservedNotificationHandler("$/shutdown", (params) => this.onShutdownNotification(params));
    this.parentWatch = watchParent(() => void this.stopNow("parent_exited"));
    process.stderr.on("error", () => undefined); // a broken stderr must not kill the worker before its clean-up (D20)
    this.controlChannel.start();
    await this.runHook("controlReady", () => this.hooks.controlReady?.());

    if (this.dataChannel !== null && this.dataPath !== null) {
      try {
        await this.dataChannel.listen();
      } catch (error) {
        return this.failStartup(error instanceof StartupError ? error : new StartupError(describeError(error)));
      }
      await this.runHook("dataListening", () => this.hooks.dataListening?.(this.dataPath as string));
    }

    await this.controlChannel.notify("$/ready", {
      protocol: PROTOCOL_VERSION,
      sdk: SDK_NAME,
      sdkVersion: SDK_VERSION,
      language: "node",
      pid: process.pid,
      dataPath: this.dataPath,
    });
    // Only now: the thread costs a few milliseconds of start-up that $/ready need not wait for.
    startWatchdog(this.dataChannel?.socketFile ?? null);
    if (this.dataChannel === null) await this.announceReady();
  }

  /**
   * Shuts down gracefully, as `$/shutdown` does: refuses new requests (-32004), lets in-flight
   * handlers finish for up to `timeoutMs` (default: the `shutdownTimeoutMs` option; Infinity: for
   * as long as they take), cancels the rest, closes the data channel, removes the socket file and
   * exits with code 0. Call it from a handler without awaiting it: the handler's own response is
   * sent before the process exits.
   * @throws {TypeError} or {RangeError} at once (not as a rejection, which a call left unawaited
   *   would turn into a crash), for a `timeoutMs` that is not a number >= 0; nothing is shut down.
   */
  shutdown(timeoutMs?: number): Promise<void> {
    if (timeoutMs !== undefined) checkDuration("shutdown timeoutMs", timeoutMs);
    return this.stopGracefully("shutdown_call", timeoutMs ?? this.shutdownTimeoutMs);
  }

  // ---- shutdown paths -------------------------------------------------------------------------

  /** `$/shutdown` (PROTOCOL.md 8.1, D3): answered `null` only once every other request is answered. */
  private async onShutdownRequest(params: unknown, context: RequestContext): Promise<null> {
    const timeoutMs = shutdownTimeoutMs(params, this.shutdownTimeoutMs);
    await this.drain("shutdown_request", timeoutMs, context.id);
    // Steps 5-6 once the null result below has been written.
    void this.controlChannel.whenAnswered(context.id).then(() => this.exit(0));
    return null;
  }

  /** `$/shutdown` as a notification (D12): the same shutdown, unanswered; invalid params mean the default timeout. */
  private onShutdownNotification(params: unknown): void {
    let timeoutMs = this.shutdownTimeoutMs;
    try {
      timeoutMs = shutdownTimeoutMs(params, this.shutdownTimeoutMs);
    } catch {
      // The default, as said.
    }
    void this.stopGracefully("shutdown_request", timeoutMs);
  }

  /** Drains, then exits. */
  private stopGracefully(reason: ShutdownReason, timeoutMs: number): Promise<void> {
    return this.drain(reason, timeoutMs).then(() => this.exit(0));
  }

  /**
   * Steps 1-3 of PROTOCOL.md 8.1 (D3): new requests are refused (-32004), in-flight handlers on both
   * channels get `timeoutMs` to finish, the rest are cancelled and answered -32002 (handlers that
   * react to the cancellation get CANCEL_GRACE_MS to do so and answer for themselves). `except` is
   * the `$/shutdown` request itself.
   */
  private drain(reason: ShutdownReason, timeoutMs: number, except?: RequestId): Promise<void> {
    this.draining ??= (async () => {
      await this.beginShutdown(reason);
      const [controlIdle, dataIdle] = await Promise.all([
        this.controlChannel.whenIdle(timeoutMs, except),
        this.dataChannel?.whenIdle(timeoutMs) ?? Promise.resolve(true),
      ]);
      if (!controlIdle || !dataIdle) {
        await Promise.all([this.controlChannel.cancelRunning(CANCEL_GRACE_MS, except), this.dataChannel?.cancelRunning(CANCEL_GRACE_MS)]);
      }
      // The data channel's answers reach the OS before the result on control is written (no
      // order between channels otherwise, 4.6; the socket gathers a tick's writes into one).
      await withTimeout(this.dataChannel?.flushed() ?? Promise.resolve(), EXIT_FLUSH_MS);
    })();
    return this.draining;
  }

  /**
   * Stdin EOF (the parent is gone, PROTOCOL.md 8.3, D19), a broken stdout, the parent's death seen
   * as a new parent pid, SIGTERM or SIGINT (8.4): cancel everything and exit within EXIT_BUDGET_MS
   * (D4), whatever the handlers do. After the parent's death the rest of the process group goes too.
   */
  private stopNow(reason: ShutdownReason): Promise<void> {
    if (this.stoppingNow !== null) return this.stoppingNow;
    const parentGone = reason === "stdin_eof" || reason === "parent_exited";
    if (parentGone) signalGroup("SIGTERM");
    // A backstop: nothing below (a hook, a stuck flush) may hold the exit past the budget.
    setTimeout(() => this.exitNow(0, parentGone), EXIT_BUDGET_MS);
    this.stoppingNow = (async () => {
      await withTimeout(this.beginShutdown(reason), EXIT_GRACE_MS);
      await Promise.all([this.controlChannel.cancelRunning(EXIT_GRACE_MS), this.dataChannel?.cancelRunning(EXIT_GRACE_MS)]);
      await this.exit(0, parentGone);
    })();
    return this.stoppingNow;
  }

  private async beginShutdown(reason: ShutdownReason): Promise<void> {
    if (this.shutdownBegun) return;
    this.shutdownBegun = true;
    this.controlChannel.refuseRequests(ErrorCodes.ShuttingDown, "shutting down");
    this.dataChannel?.refuseRequests(ErrorCodes.ShuttingDown, "shutting down");
    await this.runHook("shuttingDown", () => this.hooks.shuttingDown?.(reason));
  }

  /** Steps 5-6: closes the data channel, removes the socket file, flushes stdout, runs `stopped`, exits. */
  private async exit(code: number, parentGone = false): Promise<void> {
    if (this.exiting) return;
    this.exiting = true;
    this.controlChannel.refuseRequests(ErrorCodes.ShuttingDown, "shutting down");
    if (this.dataChannel !== null) {
      this.dataChannel.refuseRequests(ErrorCodes.ShuttingDown, "shutting down");
      await withTimeout(this.dataChannel.close(), EXIT_FLUSH_MS);
      this.dataChannel.removeSocketFile();
    }
    await withTimeout(this.stdio.flush(), EXIT_FLUSH_MS);
    await withTimeout(this.runHook("stopped", () => this.hooks.stopped?.()), EXIT_FLUSH_MS);
    this.exitNow(code, parentGone);
  }

  /** Ends the process now: the socket file goes (the 'exit' handler), and after the parent's death the group. */
  private exitNow(code: number, parentGone: boolean): never {
    if (parentGone) signalGroup("SIGKILL");
    this.parentWatch?.stop();
    process.exit(code);
  }

  private failStartup(error: StartupError): never {
    process.stderr.write(`aspect-ipc worker: ${error.message}\n`); // the words of every SDK
    process.exit(2);
  }

  private async announceReady(): Promise<void> {
    if (this.readySent) return;
    this.readySent = true;
    await this.runHook("ready", () => this.hooks.ready?.());
  }

  private async runHook(name: string, hook: () => void | Promise<void>): Promise<void> {
    try {
      await hook();
    } catch (error) {
      this.log(`${name} hook failed: ${describeError(error)}`);
    }
  }
}

function both(first: Disposable, second: Disposable): Disposable {
  return {
    dispose: () => {
      first.dispose();
      second.dispose();
    },
  };
}

/** The control line limit: the parent's ASPECT_IPC_MAX_LINE_LENGTH when set (both sides must agree, D15), else the option. */
function lineLimit(options: WorkerOptions, environment: WorkerEnvironment | null): number {
  const fromParent = (options.env ?? process.env)[Env.MaxLineLength];
  if (fromParent !== undefined && fromParent !== "" && environment !== null) return environment.maxLineLength;
  return options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
}
