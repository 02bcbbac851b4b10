/**
 * Durations given by a caller or the peer: checking them, and timers that honour any of them.
 *
 * Node's `setTimeout` takes at most 2^31-1 ms (about 24.8 days): a longer delay, and Infinity,
 * fire after 1 ms with a TimeoutOverflowWarning on stderr. A "very long" or "no limit" timeout then
 * fires at once, and a loop that re-arms such a timer until its deadline spins and floods stderr.
 * So every timer the SDK sets from a duration it did not choose itself goes through
 * {@link startTimer}; only its own fixed constants use `setTimeout` directly.
 */

/** The longest delay `setTimeout` honours, in milliseconds (2^31-1, about 24.8 days). */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** Stops a timer made by {@link startTimer}; calling it again, or after the timer fired, does nothing. */
export type CancelTimer = () => void;

/** How a {@link startTimer} timer holds the process. */
export interface TimerOptions {
  /** Let the process exit while only this timer is left (as `timeout.unref()`); default false. */
  readonly unref?: boolean | undefined;
}

/**
 * Calls `callback` once, after `delayMs` milliseconds, for any duration:
 * - Infinity sets no timer at all: the callback is never called (a "no limit" or "wait for ever");
 * - a finite delay over {@link MAX_TIMER_DELAY_MS} is waited in chained steps of at most that
 *   much, so it fires when it says, not after 1 ms (decided over treating it as no limit: the wait
 *   is exact, and costs one wake-up per 24.8 days);
 * - 0, a negative delay or NaN fire as soon as a timer can (the callers check their durations first;
 *   a negative one here is a deadline already passed).
 * Returns the function that cancels it.
 */
export function startTimer(callback: () => void, delayMs: number, options: TimerOptions = {}): CancelTimer {
  if (delayMs === Infinity) return () => undefined;
  let left = delayMs > 0 ? delayMs : 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const step = Math.min(left, MAX_TIMER_DELAY_MS);
    left -= step;
    timer = setTimeout(left > 0 ? arm : callback, step);
    if (options.unref === true) timer.unref();
  };
  arm();
  return () => clearTimeout(timer);
}

/**
 * Resolves once `promise` settles (either way) or `timeoutMs` has passed, whichever comes first
 * (never by time with Infinity).
 */
export async function withTimeout(promise: Promise<unknown>, timeoutMs: number): Promise<void> {
  let cancel: CancelTimer | undefined;
  await Promise.race([promise.catch(() => undefined), new Promise<void>((resolve) => (cancel = startTimer(resolve, timeoutMs)))]);
  cancel?.();
}

/**
 * Checks a millisecond option given by the program: a number >= 0, Infinity included (what it
 * means, "no limit" or "wait for ever", is the option's to say). `-0` counts as 0.
 * @param name how the message names the option (`timeoutMs`, `helloTimeoutMs`, ...)
 * @throws {TypeError} when `value` is not a number (a string, null, a bigint, a boolean...);
 *   {RangeError} when it is NaN or negative.
 */
export function checkDuration(name: string, value: unknown): asserts value is number {
  if (typeof value === "number" && value >= 0) return;
  const message = `${name} must be a number of milliseconds >= 0 (Infinity for no limit), not ${describeValue(value)}`;
  throw typeof value === "number" ? new RangeError(message) : new TypeError(message);
}

/** A bad option's value, for the message: a string quoted, a bigint with its `n`, containers by kind. */
function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object" && value !== null) return "an object";
  if (typeof value === "function") return "a function";
  return String(value);
}
