/**
 * The requests this side has sent and not yet seen answered (PROTOCOL.md 4.4, 9.2).
 */
import { ChannelClosed, ProtocolError, RemoteError, RequestCancelled, RequestTimeout, type IpcError } from "../errors.js";
import type { ClassifiedMessage, RequestId } from "../jsonrpc/messages.js";
import { startTimer, type CancelTimer } from "../timeouts.js";

/** What the peer sends back for our requests: a result, an error, or an invalid response (not answered). */
export type PeerResponse = Extract<ClassifiedMessage, { kind: "response" | "error_response" | "invalid" }>;

interface PendingRequest {
  readonly method: string;
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: unknown) => void;
  /** Stops the timer and the abort listener, when the request has them. */
  cleanup?: () => void;
}

/**
 * What became of a request whose caller stopped waiting: taken back before it was written (with
 * the bytes that waited before it), or sent, and the peer told to cancel it (PROTOCOL.md 9.2).
 */
export type Abandoned = { readonly sent: false; readonly queuedBefore: number } | { readonly sent: true };

/** How a request is watched: its caller's signal and timeout. */
interface TrackOptions {
  readonly signal?: AbortSignal | undefined;
  readonly timeoutMs?: number | undefined;
  /** How much of the timeout was spent before the request was sent (waiting for room to send it). */
  readonly waitedMs?: number | undefined;
}

/** The key under which an id is tracked: strings and integers never collide. */
export function idKey(id: RequestId): string {
  return typeof id === "string" ? `s:${id}` : `i:${String(id)}`;
}

/** Pending outgoing requests, by id. */
export class OutgoingRequests {
  private nextId = 1;
  private readonly pending = new Map<string, PendingRequest>();

  /** Allocates the next id: integers from 1, one per request (PROTOCOL.md 4.4). */
  allocateId(): number {
    return this.nextId++;
  }

  /**
   * Tracks request `id` and returns the promise its caller awaits. `abandon` is called (once) when
   * the caller stops waiting, by signal or timeout: it takes the request back if it was not written
   * yet, else sends `$/cancelRequest`, and says which; the caller's error says it too.
   */
  track(id: number, method: string, options: TrackOptions, abandon: () => Abandoned): Promise<unknown> {
    const key = idKey(id);
    return new Promise<unknown>((resolve, reject) => {
      const request: PendingRequest = { method, resolve, reject };
      this.pending.set(key, request);
      // Most requests have neither a signal nor a timeout: no closures are made for them.
      if (options.signal !== undefined || options.timeoutMs !== undefined) this.watch(key, request, options, abandon);
    });
  }

  /** Abandons `request` when `options.signal` aborts or `options.timeoutMs` passes. */
  private watch(key: string, request: PendingRequest, options: TrackOptions, abandon: () => Abandoned): void {
    let cancelTimer: CancelTimer | undefined;
    const { signal } = options;
    const method = request.method;
    const giveUp = (errorFor: (outcome: Abandoned) => IpcError): void => {
      if (this.pending.get(key) !== request) return;
      this.pending.delete(key);
      request.cleanup?.();
      request.reject(errorFor(abandon()));
    };
    const onAbort = (): void =>
      giveUp((outcome) => new RequestCancelled(`request ${method} cancelled by the caller${outcome.sent ? "" : " before it was sent"}`));
    request.cleanup = () => {
      cancelTimer?.();
      signal?.removeEventListener("abort", onAbort);
    };
    // Infinity is no limit (startTimer sets no timer); one past setTimeout's range is still honoured.
    if (options.timeoutMs !== undefined) {
      const timeoutMs = options.timeoutMs;
      const onTimeout = (): void => giveUp((outcome) => new RequestTimeout(method, timeoutMs, timeoutMessage(method, timeoutMs, outcome)));
      cancelTimer = startTimer(onTimeout, timeoutMs - (options.waitedMs ?? 0));
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  }

  /** Completes the request with `id`; false if none is pending (unknown, answered or abandoned). */
  settle(id: RequestId, outcome: { result: unknown } | { error: unknown }): boolean {
    const key = idKey(id);
    const request = this.pending.get(key);
    if (request === undefined) return false;
    this.pending.delete(key);
    request.cleanup?.();
    if ("result" in outcome) request.resolve(outcome.result);
    else request.reject(outcome.error);
    return true;
  }

  /**
   * Completes one of our requests with the peer's response: its result, a {@link RemoteError} (the
   * only place one is made from the wire), or a ProtocolError for an invalid response. Returns what
   * to report when no pending request takes it (a null or unknown id, or a request abandoned).
   * @param channel the channel's name, for messages
   */
  complete(response: PeerResponse, channel: string): IpcError | null {
    switch (response.kind) {
      case "response":
        if (this.settle(response.id, { result: response.result })) return null;
        return new ProtocolError(`${channel} channel: dropped a response for id ${String(response.id)}, which matches no pending request`);
      case "error_response": {
        const error = new RemoteError(response.code, response.message, response.data);
        if (response.id !== null && this.settle(response.id, { error })) return null;
        const text = `${channel} channel: peer sent an error response for id ${String(response.id)}: ${response.message}`;
        return new RemoteError(response.code, text, response.data);
      }
      case "invalid": {
        const error = new ProtocolError(`${channel} channel: peer sent an invalid response: ${response.reason}`);
        return response.id !== null && this.settle(response.id, { error }) ? null : error;
      }
    }
  }

  /**
   * Fails the pending request with `id` because its answer did not decode (PROTOCOL.md 4.8): a
   * ProtocolError, as for an invalid response, naming the decoding failure. False if none is
   * pending: the answer is then an undecodable message like any other.
   * @param channel the channel's name, for messages
   */
  failUndecodable(id: RequestId, problem: IpcError, channel: string): boolean {
    const method = this.methodOf(id);
    if (method === undefined) return false;
    const text = `${channel} channel: the answer to request ${method} (id ${String(id)}) cannot be decoded: ${problem.message}`;
    return this.settle(id, { error: new ProtocolError(text, { cause: problem }) });
  }

  /** The method of the pending request with `id`, if any. */
  methodOf(id: RequestId): string | undefined {
    return this.pending.get(idKey(id))?.method;
  }

  /** Fails every pending request: the channel closed. */
  failAll(reason: string): void {
    const requests = [...this.pending.values()];
    this.pending.clear();
    for (const request of requests) {
      request.cleanup?.();
      request.reject(new ChannelClosed(reason));
    }
  }
}

/**
 * A timed-out request's message, which says whether it was sent (the wording of the other SDKs):
 * one still queued was taken back, and the bytes before it were what the peer had not read.
 */
export function timeoutMessage(method: string, timeoutMs: number, outcome: Abandoned): string {
  if (!outcome.sent) {
    return `request ${method} was not sent within ${timeoutMs} ms: the peer read none of the ${outcome.queuedBefore} bytes queued before it`;
  }
  return `request ${method} timed out after ${timeoutMs} ms: it was sent, and the peer was sent $/cancelRequest`;
}
