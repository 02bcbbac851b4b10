/**
 * Codec hooks (decision S1): checking the options, and the JSON codec's decode-hook pass.
 *
 * The MessagePack decoder calls its decode hook as it builds each map (msgpack-decode.ts); JSON is
 * parsed natively, so its maps go through the hook in a second pass over the parsed value, taken
 * only when a hook is set.
 */
import { describeHookError } from "./advice.js";
import type { CodecOptions, DecodeHook } from "./types.js";
import { formatPath } from "./values.js";

/** Checks that the hooks given to `codecClass` are functions (or absent). */
export function checkHooks(options: CodecOptions, codecClass: string): void {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`${codecClass} options must be an object such as { encodeHook, decodeHook }, got ${describe(options)}`);
  }
  for (const name of ["encodeHook", "decodeHook"] as const) {
    const hook = options[name];
    if (hook !== undefined && typeof hook !== "function") {
      throw new TypeError(`${codecClass} option ${name} must be a function, got ${describe(hook)}`);
    }
  }
}

/** A decode hook threw: where, and the hook's error. */
export class DecodeHookError extends Error {
  constructor(
    readonly path: string,
    readonly hookError: unknown,
  ) {
    super(`decode hook failed on the map at ${path} (JSON): ${describeHookError(hookError)}`);
  }
}

/**
 * `value` with every map replaced by `hook(map)`, innermost first (the top-level map last).
 * Arrays and maps of `value` are updated in place: it is a freshly decoded value no one else holds.
 * @throws {DecodeHookError} naming the map the hook failed on.
 */
export function applyDecodeHook(value: unknown, hook: DecodeHook): unknown {
  const path: Array<string | number> = [];
  const visit = (item: unknown): unknown => {
    if (item === null || typeof item !== "object") return item;
    if (Array.isArray(item)) {
      for (let index = 0; index < item.length; index++) {
        path.push(index);
        item[index] = visit(item[index]);
        path.pop();
      }
      return item;
    }
    const map = item as Record<string, unknown>;
    for (const key of Object.keys(map)) {
      path.push(key);
      const replaced = visit(map[key]);
      if (replaced !== map[key]) {
        Object.defineProperty(map, key, { value: replaced, writable: true, enumerable: true, configurable: true });
      }
      path.pop();
    }
    try {
      return hook(map);
    } catch (error) {
      throw new DecodeHookError(formatPath(path), error);
    }
  };
  return visit(value);
}

/**
 * The id of a message whose decode hook failed, when the top level is a map with a string
 * `method` and a string or integer `id` (PROTOCOL.md 4.8): the `-32700` answer carries it.
 */
export function messageId(value: unknown): string | number | bigint | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const { method, id } = value as { method?: unknown; id?: unknown };
  if (typeof method !== "string") return undefined;
  if (typeof id === "string" || typeof id === "bigint" || (typeof id === "number" && Number.isInteger(id))) return id;
  return undefined;
}

/**
 * The id of an answer whose decode hook failed, when the top level is a map without `method`, with
 * `result` or `error`, and a string or integer `id` (PROTOCOL.md 4.8): the request it names fails.
 */
export function answerId(value: unknown): string | number | bigint | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const has = (member: string): boolean => Object.prototype.hasOwnProperty.call(value, member);
  if (has("method") || !(has("result") || has("error"))) return undefined;
  const { id } = value as { id?: unknown };
  if (typeof id === "string" || typeof id === "bigint" || (typeof id === "number" && Number.isInteger(id))) return id;
  return undefined;
}

function describe(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
}
