/**
 * A request of ours waits for room in the outbox before it is even encoded (PROTOCOL.md 2.6, 4.5):
 * what waits for a peer that does not read is then its arguments, not their encoded copies. Its
 * timeout and signal count from the call, so one that finds no room in time is never sent, and
 * fails saying so.
 */
import { RequestCancelled, RequestTimeout } from "../errors.js";
import { startTimer, type CancelTimer } from "../timeouts.js";
import type { RequestOptions } from "./handlers.js";
import type { Outbox } from "./outbox.js";
import { timeoutMessage } from "./outgoing.js";

/** The options a request is sent with once it found room: `waitedMs`, how long of its timeout it spent waiting. */
export type SendOptions = RequestOptions & { waitedMs?: number };

/**
 * Calls `send` once the outbox has room for request `method`, and returns what it returns;
 * `assertOpen` throws once the channel closed. Rejects, never calling `send`, when the caller's
 * timeout or signal comes first.
 */
export async function sendWhenRoom<T>(outbox: Outbox, method: string, options: RequestOptions, assertOpen: () => void, send: (options: SendOptions) => T): Promise<T> {
  const { timeoutMs, signal } = options;
  const started = Date.now();
  let cancelTimer: CancelTimer | undefined;
  let giveUp: Promise<never> | undefined;
  let onAbort: (() => void) | undefined;
  if (timeoutMs !== undefined || signal !== undefined) {
    giveUp = new Promise<never>((_, reject) => {
      if (timeoutMs !== undefined) {
        cancelTimer = startTimer(() => {
          const message = timeoutMessage(method, timeoutMs, { sent: false, queuedBefore: outbox.unwrittenBytes });
          reject(new RequestTimeout(method, timeoutMs, message));
        }, timeoutMs);
      }
      onAbort = () => reject(new RequestCancelled(`request ${method} cancelled by the caller before it was sent`));
      if (signal?.aborted === true) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
    });
    giveUp.catch(() => undefined);
  }
  try {
    // Checked again right before the encode (`send`), with no await in between: every waiting
    // sender is woken, and the first to encode may take the room.
    while (!outbox.hasRoom) {
      await (giveUp === undefined ? outbox.room() : Promise.race([outbox.room(), giveUp]));
      assertOpen();
    }
  } finally {
    cancelTimer?.();
    if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
  }
  const waited = Date.now() - started;
  return send(timeoutMs === undefined ? options : { ...options, timeoutMs, waitedMs: waited });
}
