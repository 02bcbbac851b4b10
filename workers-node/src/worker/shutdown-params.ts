/** The params of `$/shutdown` (PROTOCOL.md 8.1, decision D12). Pure code. */
import { ErrorCodes, RemoteError } from "../errors.js";
import { isMap } from "../jsonrpc/messages.js";

/**
 * The shutdown timeout in milliseconds that `params` asks for: params absent, `{}` or
 * `{"timeout": t}` with `t` absent, null (the default) or a finite number of seconds >= 0. Any
 * such `t` is waited for as given, however long (the timers take any duration, timeouts.ts); one
 * over about 1.8e305 s is Infinity in milliseconds, and waited for as no limit, which it is in effect.
 * @throws {RemoteError} -32602 for anything else (the shutdown does not happen).
 */
export function shutdownTimeoutMs(params: unknown, defaultMs: number): number {
  if (params === undefined) return defaultMs;
  if (!isMap(params)) {
    throw new RemoteError(ErrorCodes.InvalidParams, "Invalid params: $/shutdown params must be absent or a map such as {\"timeout\": 5}");
  }
  const timeout = params.timeout;
  if (timeout === undefined || timeout === null) return defaultMs;
  if (typeof timeout === "bigint" && timeout >= 0n) return Number(timeout) * 1000;
  if (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout < 0) {
    throw new RemoteError(
      ErrorCodes.InvalidParams,
      `Invalid params: $/shutdown timeout must be null or a finite number of seconds >= 0, got ${typeof timeout === "string" ? JSON.stringify(timeout) : String(timeout)}`,
    );
  }
  return timeout * 1000;
}
