/**
 * Running the peer's requests and notifications on one channel (PROTOCOL.md 4.3, 4.5; decision D16).
 *
 * Which handler runs: a reserved (`$/`) method the worker layer installed on this channel, then the
 * built-in `$/ping`, then the user's handler table; no handler is `-32601` for a request and
 * nothing for a notification (PROTOCOL.md 11.2). While shutting down, every request is refused.
 *
 * Requests run concurrently: each handler starts as soon as its request is read, and exactly one
 * response is sent for it. Notification handlers run one at a time, in arrival order: the next
 * starts once the previous one has finished (awaited when it is async), so that a notification
 * "set x" followed by "use x" sees x set. A notification never waits behind a request, nor a
 * request or a response behind a notification.
 *
 * The notifications waiting for their handler are bounded (PROTOCOL.md 4.5): at most
 * MAX_QUEUED_NOTIFICATIONS of them and QUEUED_NOTIFICATION_BYTES of their frames, one always
 * accepted when none waits. The channel asks {@link Dispatcher.notificationMustWait} before it hands
 * one over, and stops reading until the handler takes the next one (`notificationTaken`): never a
 * notification dropped.
 */
import { FloatMember } from "../codecs/float-members.js";
import { ErrorCodes, IpcError, RequestCancelled, describeError } from "../errors.js";
import type { RequestId } from "../jsonrpc/messages.js";
import {
  errorToWire,
  isReservedMethod,
  type HandlerErrorPolicy,
  type HandlerTable,
  type NotificationHandler,
  type RequestContext,
  type RequestHandler,
  type RpcPeer,
  type WireError,
} from "./handlers.js";
import type { IncomingRequests, RunningRequest } from "./incoming.js";
import { WRITTEN } from "./outbox.js";
import type { Emit } from "../streams/endpoints.js";
import { ResponderStreams, type RequestStreams } from "../streams/responder.js";
import { driveOutput, inputOf, isAsyncIterable, missingStream } from "../streams/run.js";
import { isStreamMethod } from "../streams/wire.js";

/** The most notifications that wait for their handler on one channel (PROTOCOL.md 4.5). */
export const MAX_QUEUED_NOTIFICATIONS = 1024;

/** The most bytes of notification frames that wait for their handler on one channel (PROTOCOL.md 4.5). */
export const QUEUED_NOTIFICATION_BYTES = 16 * 1024 * 1024;

/** A notification waiting for its handler, with the size of its frame. */
interface QueuedNotification {
  readonly method: string;
  readonly params: unknown;
  readonly handler: NotificationHandler;
  readonly size: number;
}

/** How the dispatcher answers and reports, through its channel. */
export interface DispatchOutput {
  /** Sends a response; never rejects; returns `WRITTEN` (outbox.ts) when it was written at once. */
  sendResult(id: RequestId, result: unknown): Promise<void>;
  /** Sends an error response, as `sendResult`. */
  sendError(id: RequestId | null, error: WireError): Promise<void>;
  report(error: IpcError): void;
  /** Sends a stream notification: encodes at once (throwing if it cannot), resolves once written. */
  emit: Emit;
  /** The notification handler took the next notification from its queue: there may be room for another. */
  notificationTaken?: () => void;
}

/** Starts request handlers and answers them; queues notification handlers. */
export class Dispatcher {
  /** Whether a notification handler is running (the others wait in the queue). */
  private notificationRunning = false;
  /** The notifications waiting for their handler, oldest first (from `queueHead` on), and their bytes. */
  private queue: Array<QueuedNotification | undefined> = [];
  private queueHead = 0;
  private queuedBytes = 0;
  private readonly notificationTaken: () => void;
  private readonly target: DispatchOutput & { name: string; peer: RpcPeer; incoming: IncomingRequests };
  private readonly reserved = new Map<string, RequestHandler>();
  private readonly reservedNotifications = new Map<string, NotificationHandler>();
  private refusal: WireError | null = null;
  /** The streams the peer opened on this channel (PROTOCOL.md 13). */
  readonly streams: ResponderStreams;
  /** The streams of this side's requests, which take the messages addressed to a requester (13.2). */
  calls: { receive(method: string, params: unknown, floatMembers?: number): void } | null = null;
  /** What a failed request handler is answered with, and who hears of it (PROTOCOL.md 4.10). */
  handlerErrors: HandlerErrorPolicy = { sendTraceback: true };

  /**
   * @param name the channel's name, for messages
   * @param peer what handlers call and notify through (the channel)
   * @param incoming the channel's running requests
   * @param handlers the user's handlers (shared by the data channel's connections)
   */
  constructor(
    name: string,
    peer: RpcPeer,
    incoming: IncomingRequests,
    private readonly handlers: HandlerTable,
    output: DispatchOutput,
  ) {
    this.target = { name, peer, incoming, sendResult: output.sendResult, sendError: output.sendError, report: output.report, emit: output.emit };
    this.notificationTaken = output.notificationTaken ?? (() => undefined);
    this.streams = new ResponderStreams(name, {
      emit: output.emit,
      failRequest: (id, error, reason) => {
        // A stream protocol error (13.5): answered at once; the handler's own outcome is dropped.
        const request = incoming.get(id);
        if (request === undefined || request.answered) return;
        request.answered = true;
        void output.sendError(id, error);
        request.abort(reason);
      },
    });
  }

  /** Handles a reserved (`$/`) request method on this channel (the worker layer's `$/shutdown`, `$/hello`). */
  setReservedHandler(method: string, handler: RequestHandler): void {
    this.reserved.set(method, handler);
  }

  /** Handles a reserved (`$/`) notification method on this channel. */
  setReservedNotificationHandler(method: string, handler: NotificationHandler): void {
    this.reservedNotifications.set(method, handler);
  }

  /** From now on, answers every new request with `error` (shutdown: -32004). */
  refuseRequests(error: WireError): void {
    this.refusal = error;
  }

  /**
   * A request from the peer: refused while shutting down, `-32601` without a handler, else run.
   * `floatMembers`: the watched members its decoder saw written as floats (float-members.ts).
   */
  request(id: RequestId, method: string, params: unknown, floatMembers = 0): void {
    if (this.refusal !== null) {
      void this.target.sendError(id, this.refusal);
      return;
    }
    const handler =
      this.reserved.get(method) ?? (isReservedMethod(method) ? builtinRequests.get(method) : this.handlers.requestHandler(method));
    if (handler === undefined) {
      void this.target.sendError(id, { code: ErrorCodes.MethodNotFound, message: `Method not found: ${method}` });
      return;
    }
    // An id already running is refused by runRequest (-32600) before any stream of it opens.
    const opened = this.target.incoming.get(id) === undefined ? this.streams.openRequest(id, method, params, this.handlers.inputWindow(method), floatMembers) : ({ kind: "plain" } as const);
    if (opened.kind === "refused") {
      void this.target.sendError(id, opened.error);
      return;
    }
    if (opened.kind === "open") this.runRequest(id, method, opened.params, handler, opened.streams);
    else this.runRequest(id, method, params, handler);
  }

  /**
   * Whether a notification of `size` bytes for `method` must wait before it is handed over: its
   * handler's queue is full (PROTOCOL.md 4.5). Stream messages and `$/cancelRequest` never wait,
   * nor a notification without a handler (it is dropped), nor one that finds no other waiting.
   */
  notificationMustWait(method: string, size: number): boolean {
    const waiting = this.queue.length - this.queueHead;
    if (waiting === 0) return false;
    if (waiting < MAX_QUEUED_NOTIFICATIONS && this.queuedBytes + size <= QUEUED_NOTIFICATION_BYTES) return false;
    if (isStreamMethod(method) || method === "$/cancelRequest") return false;
    return (isReservedMethod(method) ? this.reservedNotifications.get(method) : this.handlers.notificationHandler(method)) !== undefined;
  }

  /**
   * A notification from the peer: `$/cancelRequest` aborts a running request; others run their
   * handler, if any, once the handlers of those before them have finished. `size`: its frame's;
   * `floatMembers`: the watched members its decoder saw written as floats (float-members.ts).
   */
  notification(method: string, params: unknown, size = 0, floatMembers = 0): void {
    if (isStreamMethod(method)) {
      // At once, in arrival order, never behind a notification handler (PROTOCOL.md 13.4).
      this.streams.receive(method, params, floatMembers);
      this.calls?.receive(method, params, floatMembers);
      return;
    }
    if (method === "$/cancelRequest") {
      // `{"id": 7.0}` cancels nothing: a float is never an id (4.2, 9.1), though it decodes to 7.
      const id = (floatMembers & FloatMember.cancelId) === 0 ? (params as { id?: unknown } | undefined)?.id : undefined;
      if (typeof id === "string" || typeof id === "number" || typeof id === "bigint") this.target.incoming.cancel(id);
      return;
    }
    // Unknown $/ notifications are ignored (PROTOCOL.md 11.2); so are notifications without a handler.
    const handler = isReservedMethod(method) ? this.reservedNotifications.get(method) : this.handlers.notificationHandler(method);
    if (handler === undefined) return;
    if (this.notificationRunning) {
      this.queue.push({ method, params, handler, size });
      this.queuedBytes += size;
      return;
    }
    // With nothing running, the handler starts now (same tick).
    this.notificationRunning = true;
    void this.runNotifications(method, params, handler);
  }

  /**
   * Aborts every running request but `except`, gives the handlers `graceMs` to end (a cancelled
   * handler is answered -32002), then answers the rest -32002 itself; their own answers, if they
   * ever come, are dropped.
   */
  async cancelRunning(graceMs: number, except?: RequestId): Promise<void> {
    const { incoming } = this.target;
    for (const request of incoming.all(except)) request.abort(new RequestCancelled("request cancelled: the worker is shutting down"));
    await incoming.whenIdle(graceMs, except);
    const sends = incoming.all(except).map((request) => {
      if (request.answered) return Promise.resolve();
      request.answered = true;
      return this.target.sendError(request.id, { code: ErrorCodes.RequestCancelled, message: "request cancelled: the worker is shutting down" });
    });
    await Promise.all(sends);
  }

  /** Runs `handler` for request `id` and sends its one response. */
  private runRequest(id: RequestId, method: string, params: unknown, handler: RequestHandler, streams?: RequestStreams): void {
    const { target } = this;
    const request = target.incoming.begin(id);
    if (request === null) {
      void target.sendError(id, { code: ErrorCodes.InvalidRequest, message: `Invalid Request: id ${String(id)} is already used by a running request` });
      return;
    }
    if (streams !== undefined) {
      request.streams = streams;
      // Cancellation, shutdown, the channel closing: the handler's stream steps raise at once (13.6).
      request.signal.addEventListener("abort", () => this.streams.cancel(id, request.signal.reason as Error), { once: true });
    }
    const context = new HandlerContext(request, method, target.peer);
    // A handler that returns a value (not a promise) is answered at once, without a round through
    // the microtask queue; the response still goes through the outbox, in order.
    let outcome: unknown;
    try {
      outcome = handler(params, context);
    } catch (error) {
      this.answer(request, false, error, method);
      return;
    }
    if (isAsyncIterable(outcome) && !isThenable(outcome)) {
      const output = streams?.output;
      outcome = output === undefined ? Promise.reject(missingStream(method, "out")) : driveOutput(outcome, output);
    }
    if (isThenable(outcome)) {
      Promise.resolve(outcome).then(
        (result: unknown) => this.answer(request, true, result, method),
        (error: unknown) => this.answer(request, false, error, method),
      );
    } else {
      this.answer(request, true, outcome, method);
    }
  }

  /** Runs `handler` for a notification, then those queued behind it, one at a time, in order. */
  private async runNotifications(method: string, params: unknown, handler: NotificationHandler): Promise<void> {
    for (;;) {
      try {
        await handler(params, { method, peer: this.target.peer });
      } catch (error) {
        // A local failure (notifications are never answered): reported, not a RemoteError.
        this.target.report(new IpcError(`${this.target.name} channel: notification handler for ${method} failed: ${describeError(error)}`, { cause: error }));
      }
      const next = this.queue[this.queueHead];
      if (next === undefined) {
        this.notificationRunning = false;
        this.queue = [];
        this.queueHead = 0;
        return;
      }
      this.queue[this.queueHead++] = undefined; // taken: not kept alive by the queue
      this.queuedBytes -= next.size;
      if (this.queueHead === this.queue.length) {
        this.queue = [];
        this.queueHead = 0;
      }
      ({ method, params, handler } = next);
      this.notificationTaken();
    }
  }

  /**
   * Sends the response of a finished handler (unless one was sent already) and stops tracking it
   * once the response was written: at once when the writer took it at once (no promise, no tick).
   */
  private answer(request: RunningRequest, succeeded: boolean, value: unknown, method: string): void {
    let sent: Promise<void> = WRITTEN;
    try {
      if (!request.answered) {
        request.answered = true;
        if (request.streams !== undefined) this.streams.finish(request.id);
        if (succeeded) {
          sent = this.target.sendResult(request.id, value);
        } else {
          const wire: WireError = request.aborted
            ? { code: ErrorCodes.RequestCancelled, message: "request cancelled" }
            : errorToWire(value, this.handlerErrors.sendTraceback);
          if (wire.code === ErrorCodes.HandlerError) this.handlerErrors.onFailure?.(method, value); // not a typed error: a bug
          sent = this.target.sendError(request.id, wire);
        }
      }
    } catch (error) {
      // Only a failure hook of the program's own can throw here: reported, the reader goes on.
      this.target.report(new IpcError(`${this.target.name} channel: answering ${method} failed: ${describeError(error)}`, { cause: error }));
    } finally {
      const { incoming } = this.target;
      if (sent === WRITTEN) incoming.end(request);
      else void sent.then(() => incoming.end(request));
    }
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

  get input(): AsyncIterable<unknown> {
    return inputOf(this.method, this.#request.streams?.input);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null && (typeof value === "object" || typeof value === "function") && typeof (value as { then?: unknown }).then === "function"
  );
}

/** Reserved requests every receiver answers (PROTOCOL.md 8.6). */
const builtinRequests = new Map<string, RequestHandler>([["$/ping", () => ({})]]);
