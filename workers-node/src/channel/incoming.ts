/**
 * The peer's requests that are running here (PROTOCOL.md 4.5, 8.1, 9.3): their abort signals,
 * whether they were answered, and waiting for them to finish.
 */
import { RequestCancelled } from "../errors.js";
import type { RequestId } from "../jsonrpc/messages.js";
import type { RequestStreams } from "../streams/responder.js";
import { startTimer } from "../timeouts.js";
import { idKey } from "./outgoing.js";

/**
 * One request running in a handler. Its AbortSignal is made only when the handler asks for it:
 * most handlers never look, and an AbortController per request was a tenth of the data path.
 */
export class RunningRequest {
  /** Set once a response was sent (or given up): exactly one response per request. */
  answered = false;
  /** The streams the request opened (PROTOCOL.md 13), if any. */
  streams?: RequestStreams;
  private controller: AbortController | null = null;
  private abortReason: unknown = undefined;
  private isAborted = false;

  /**
   * @param id the request's id
   * @param key its key in {@link IncomingRequests} (made once, not again when it ends)
   */
  constructor(
    readonly id: RequestId,
    readonly key: string = idKey(id),
  ) {}

  /** Aborted on `$/cancelRequest`, shutdown or close; already aborted if asked for afterwards. */
  get signal(): AbortSignal {
    if (this.controller === null) {
      this.controller = new AbortController();
      if (this.isAborted) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  get aborted(): boolean {
    return this.isAborted;
  }

  /** Aborts the request's signal with `reason` (the first reason wins). */
  abort(reason: unknown): void {
    if (this.isAborted) return;
    this.isAborted = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }
}

/** Running requests, by id. */
export class IncomingRequests {
  private readonly running = new Map<string, RunningRequest>();
  private idleWaiters: Array<() => void> = [];

  /** Starts tracking a request; null if a request with the same id is already running. */
  begin(id: RequestId): RunningRequest | null {
    const key = idKey(id);
    if (this.running.has(key)) return null;
    const request = new RunningRequest(id, key);
    this.running.set(key, request);
    return request;
  }

  /** The running request with `id`, if any. */
  get(id: RequestId): RunningRequest | undefined {
    return this.running.get(idKey(id));
  }

  /** Stops tracking a request once its response went out. */
  end(request: RunningRequest): void {
    const key = request.key;
    if (this.running.get(key) === request) this.running.delete(key);
    if (this.idleWaiters.length > 0) for (const waiter of this.idleWaiters.splice(0)) waiter();
  }

  /** Resolves once the request with `id` has ended (its response sent); at once if it is not running. */
  async whenEnded(id: RequestId): Promise<void> {
    const key = idKey(id);
    while (this.running.has(key)) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }

  /** Aborts the request with `id` (`$/cancelRequest`); unknown ids are ignored (PROTOCOL.md 9.3). */
  cancel(id: RequestId): void {
    this.running.get(idKey(id))?.abort(new RequestCancelled());
  }

  /** How many requests are running, not counting `except`. */
  count(except?: RequestId): number {
    const skip = except === undefined ? null : idKey(except);
    let count = 0;
    for (const key of this.running.keys()) if (key !== skip) count++;
    return count;
  }

  /**
   * Resolves true once no request (but `except`) runs, or false after `timeoutMs` (never by time
   * with Infinity). One timer for the whole wait, set through startTimer: a timeout past
   * setTimeout's range (a `$/shutdown` timeout of 2,147,484 s or more is valid) is honoured, not
   * turned into a 1 ms timer re-armed until the handlers end.
   */
  async whenIdle(timeoutMs: number, except?: RequestId): Promise<boolean> {
    if (this.count(except) === 0) return true;
    if (timeoutMs <= 0) return false;
    let expired = false;
    let wake = (): void => undefined;
    const cancel = startTimer(() => {
      expired = true;
      wake();
    }, timeoutMs);
    try {
      while (this.count(except) > 0) {
        if (expired) return false;
        await new Promise<void>((resolve) => {
          wake = resolve;
          this.idleWaiters.push(resolve);
        });
      }
      return true;
    } finally {
      cancel();
    }
  }

  /** Every running request but `except`. */
  all(except?: RequestId): RunningRequest[] {
    const skip = except === undefined ? null : idKey(except);
    return [...this.running.entries()].filter(([key]) => key !== skip).map(([, request]) => request);
  }
}
