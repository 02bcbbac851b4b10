/**
 * The worker's lifecycle hooks and the reasons it shuts down: one vocabulary across the SDKs
 * (Python `control_ready`... `stopped`, Go `OnControlReady`... `OnStopped`; the reason strings are
 * the same in all three).
 */

/**
 * Why a worker is shutting down, as `shuttingDown(reason)` receives it:
 * - `"shutdown_request"`: the parent sent `$/shutdown` (a request or a notification);
 * - `"shutdown_call"`: the program called `worker.shutdown()`;
 * - `"stdin_eof"`: control input ended (the parent is gone, or closed it);
 * - `"stdout_closed"`: control output broke (nobody reads stdout any more);
 * - `"parent_exited"`: the parent process died while stdin stayed open (the worker was re-parented);
 * - `"signal"`: SIGTERM or SIGINT.
 */
export type ShutdownReason = "shutdown_request" | "shutdown_call" | "stdin_eof" | "stdout_closed" | "parent_exited" | "signal";

/**
 * Lifecycle hooks, in the order they run: each once, but `dataConnected` and `dataReady` once per
 * data connection (the parent may reconnect after a connection closed). Each may be async; the worker
 * waits for it (`stopped` for 50 ms at most: the process is exiting). A hook that throws is logged
 * and does not stop the worker. `dataReady` and `ready` run BEFORE the `$/hello` response is
 * written, so what they print reaches stderr before the parent learns that the channel is up.
 * A hook given as `undefined` is as one not given (a program under `exactOptionalPropertyTypes`
 * may pass `{ ready: options.onReady }` on); a method (`ready() {...}`) fits each member too.
 */
export interface WorkerHooks {
  /** The control channel is reading stdin (handlers registered). */
  controlReady?: (() => void | Promise<void>) | undefined;
  /** The data channel listens on `path`. */
  dataListening?: ((path: string) => void | Promise<void>) | undefined;
  /** A data connection was accepted (before its `$/hello`); runs for every connection. */
  dataConnected?: (() => void | Promise<void>) | undefined;
  /** A data connection proved the token with `$/hello`. */
  dataReady?: (() => void | Promise<void>) | undefined;
  /** Every channel is up: after the first successful `$/hello`, or after `$/ready` for a control-only worker. */
  ready?: (() => void | Promise<void>) | undefined;
  /** Shutdown began, for `reason`; no new request is accepted from now on. */
  shuttingDown?: ((reason: ShutdownReason) => void | Promise<void>) | undefined;
  /** The channels are closed and the socket file removed; the process exits right after. */
  stopped?: (() => void | Promise<void>) | undefined;
}
