/**
 * Requests of ours that open streams (PROTOCOL.md 13), as the application sees them: a
 * {@link StreamCall} to iterate for an output stream, an input stream pumped from an iterable as
 * the peer grants credit. The channel provides how a request is sent ({@link Caller}); the state is
 * {@link RequesterStreams}'.
 */
import { ErrorCodes, RemoteError } from "../errors.js";
import { checkRequestOptions, type RequestOptions } from "../channel/handlers.js";
import type { CallStreams, RequesterStreams } from "./requester.js";
import { DEFAULT_WINDOW, MAX_WINDOW, STREAM_MEMBER } from "./wire.js";

/** Items of an input stream: any iterable or async iterable, read lazily as credit arrives. */
export type StreamItems = AsyncIterable<unknown> | Iterable<unknown>;

/** Options of {@link Channel.stream}. */
export interface StreamOptions extends RequestOptions {
  /** The output stream's window: how many items may be on their way or buffered here, 1 to 1024 (default 16). */
  window?: number | undefined;
}

/** How a channel sends a request and tracks its answer (the channel's own request path). */
export interface Caller {
  /** Sends the request now; throws when it cannot (closed, unencodable). */
  send(method: string, params: Record<string, unknown>, options: RequestOptions): { id: number; answer: Promise<unknown> };
  readonly streams: RequesterStreams;
}

/** A request of ours with its streams, once sent. */
interface OpenedCall {
  readonly streams: CallStreams;
  readonly answer: Promise<unknown>;
  /** Gives up on the request: `$/cancelRequest`, its streams fail, its answer is dropped (13.6). */
  readonly cancel: () => void;
}

/** Sends `method` opening an output stream of `window` (or none) and, with `items`, an input stream pumped from them. */
function openCall(caller: Caller, method: string, params: unknown, window: number | undefined, items: StreamItems | undefined, options: RequestOptions): OpenedCall {
  if (params !== undefined && (params === null || typeof params !== "object" || Array.isArray(params) || STREAM_MEMBER in params)) {
    throw new TypeError(`${method}: the params of a request with streams must be an object without "${STREAM_MEMBER}"`);
  }
  if (window !== undefined && (!Number.isInteger(window) || window < 1 || window > MAX_WINDOW)) {
    throw new RangeError(`${method}: window must be an integer from 1 to ${MAX_WINDOW}, not ${String(window)}`);
  }
  checkRequestOptions(options);
  const descriptor = { ...(window === undefined ? {} : { out: { window } }), ...(items === undefined ? {} : { in: {} }) };
  // Our own abort, so that a break can cancel the request like the caller's signal would.
  const controller = new AbortController();
  const outer = options.signal;
  if (outer?.aborted === true) controller.abort(outer.reason);
  outer?.addEventListener("abort", () => controller.abort(outer.reason), { once: true });
  caller.streams.room((window === undefined ? 0 : 1) + (items === undefined ? 0 : 1)); // before anything is sent
  const full = { ...(params as Record<string, unknown> | undefined), [STREAM_MEMBER]: descriptor };
  const { id, answer } = caller.send(method, full, { ...options, signal: controller.signal });
  const streams = caller.streams.openCall(id, window, items !== undefined);
  // A rejection that is not the peer's answer (abandoned, timed out, channel closed) fails the streams.
  answer.catch((error: unknown) => {
    if (!(error instanceof RemoteError)) caller.streams.abandon(id, error as Error);
  });
  if (items !== undefined) void pump(caller.streams, streams, items);
  return { streams, answer, cancel: () => controller.abort() };
}

/** Sends `items` on the call's input stream as credit arrives, then `$/stream/end` (or `$/stream/error`). */
async function pump(requester: RequesterStreams, call: CallStreams, items: StreamItems): Promise<void> {
  const producer = call.input;
  if (producer === undefined) return;
  const iterator = Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : (items as Iterable<unknown>)[Symbol.iterator]();
  for (;;) {
    let step: IteratorResult<unknown>;
    try {
      step = await iterator.next();
    } catch (error) {
      const message = `input stream failed: ${error instanceof Error ? error.message : String(error)}`;
      requester.endInput(call, { code: ErrorCodes.HandlerError, message });
      return;
    }
    if (step.done === true) {
      requester.endInput(call);
      return;
    }
    try {
      // With credit the item is handed over at once, and the next one is read without a wait.
      const waiting = producer.trySend(step.value);
      if (waiting !== null) await waiting;
    } catch (error) {
      if (!producer.closed) {
        // The item could not be sent (not encodable): the stream ends with that error.
        const message = `input stream failed: ${error instanceof Error ? error.message : String(error)}`;
        requester.endInput(call, { code: ErrorCodes.HandlerError, message });
      }
      // Answered, cancelled or closed: nothing more goes out (13.6); let the source clean up.
      await Promise.resolve(iterator.return?.()).catch(() => undefined);
      return;
    }
  }
}

/**
 * Calls `method` sending `items` as its input stream; resolves with the result once the peer has
 * answered (it may answer before reading everything: the rest is not read).
 */
export async function requestWithInput(caller: Caller, method: string, params: unknown, items: StreamItems, options: RequestOptions): Promise<unknown> {
  return openCall(caller, method, params, undefined, items, options).answer;
}

/**
 * An output-stream call: iterate it once (`for await (const item of call)`); after a complete loop,
 * {@link result} is the request's result, the stream's final value. Leaving the loop early (break,
 * return, throw) cancels the request (`$/cancelRequest`); an error response is raised after the items
 * sent before it. The request is sent when the loop starts.
 */
export class StreamCall implements AsyncIterable<unknown> {
  /** The request's result (the stream's final value), once the loop has ended normally. */
  result: unknown = undefined;
  private started = false;

  /** @internal Use `channel.stream(...)`. */
  constructor(private readonly open: () => OpenedCall) {}

  [Symbol.asyncIterator](): AsyncIterator<unknown, undefined> {
    if (this.started) throw new TypeError("a StreamCall can be iterated once");
    this.started = true;
    let opened: OpenedCall | null = null;
    let done = false;
    const stop = (): void => {
      if (!done) opened?.cancel();
      done = true;
    };
    return {
      next: async () => {
        if (done) return { done: true, value: undefined };
        try {
          opened ??= this.open();
          const output = opened.streams.output as NonNullable<CallStreams["output"]>;
          const step = await output.next();
          if (step.done === true) {
            this.result = await opened.answer;
            done = true;
          }
          return step;
        } catch (error) {
          stop();
          throw error;
        }
      },
      return: () => {
        stop();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  /** @internal Opens the call (the channel's side of `stream`). */
  static of(caller: Caller, method: string, params: unknown, options: StreamOptions & { input?: StreamItems | undefined }): StreamCall {
    return new StreamCall(() => openCall(caller, method, params, options.window ?? DEFAULT_WINDOW, options.input, options));
  }
}
