/** What a worker's `control` and `data` offer. */
import type { HandlerTarget, RpcPeer } from "../channel/handlers.js";

/**
 * One side of the worker: register handlers for the parent's requests and notifications, and call
 * or notify the parent. `worker.control` is always there; `worker.data` calls the currently
 * authenticated data connection (and rejects with ChannelClosed when there is none).
 */
export interface WorkerEndpoint extends HandlerTarget, RpcPeer {}
