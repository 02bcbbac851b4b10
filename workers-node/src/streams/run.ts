/**
 * How a request handler meets its streams (PROTOCOL.md 13): an async generator (or any returned
 * AsyncIterable) is an output stream whose yields are sent as items and whose return value is the
 * result; `context.input` is the input stream.
 */
import { ErrorCodes, RemoteError } from "../errors.js";
import type { StreamConsumer, StreamProducer } from "./endpoints.js";

/** Whether a handler's outcome is an output stream (an AsyncIterable, not a promise). */
export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === "function"
  );
}

/**
 * Sends the yields of `iterable` through `producer`, each once there is credit, and resolves with
 * the iterable's return value (the request's result). With credit, an item goes to the channel's
 * writer and the next one is asked for at once, without waiting for the write (the writer gathers
 * them). When a send fails (cancelled, stream failed, an item that cannot be encoded), the failure
 * is thrown into the generator at its `yield`.
 */
export async function driveOutput(iterable: AsyncIterable<unknown>, producer: StreamProducer): Promise<unknown> {
  const iterator = iterable[Symbol.asyncIterator]();
  let step = await iterator.next();
  for (;;) {
    if (step.done === true) return step.value;
    try {
      const waiting = producer.trySend(step.value);
      if (waiting !== null) await waiting;
    } catch (error) {
      if (iterator.throw === undefined) {
        await iterator.return?.();
        throw error;
      }
      // Raised at the generator's yield: it may catch it and go on (an item that cannot be encoded
      // leaves the stream open, 13) or let it propagate (cancelled: every later send raises too).
      step = await iterator.throw(error);
      continue;
    }
    step = await iterator.next();
  }
}

/** The `-32602` a handler gets when it needs a stream the request did not open (13.1). */
export function missingStream(method: string, dir: "out" | "in"): RemoteError {
  const kind = dir === "out" ? "an output" : "an input";
  return new RemoteError(ErrorCodes.InvalidParams, `Invalid params: ${method} needs ${kind} stream ($/stream.${dir})`);
}

/** The input stream of a handler, or the `-32602` it raises when the request opened none. */
export function inputOf(method: string, input: StreamConsumer | undefined): AsyncIterable<unknown> {
  if (input === undefined) throw missingStream(method, "in");
  return input;
}
