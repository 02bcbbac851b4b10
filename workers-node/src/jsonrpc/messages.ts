/**
 * JSON-RPC 2.0 message shapes and their classification (PROTOCOL.md section 4.2). Pure code.
 */
import { ErrorCodes } from "../errors.js";

/** A request id: a string or an integer (`bigint` beyond ±(2^53 - 1)). */
export type RequestId = string | number | bigint;

/** Params of a request or notification: an array or a map. */
export type Params = unknown[] | Record<string, unknown>;

/** A message after classification; `invalid` carries what a receiver answers (or not). */
export type ClassifiedMessage =
  | { readonly kind: "request"; readonly id: RequestId; readonly method: string; readonly params?: Params }
  | { readonly kind: "notification"; readonly method: string; readonly params?: Params }
  | { readonly kind: "response"; readonly id: RequestId; readonly result: unknown }
  | {
      readonly kind: "error_response";
      readonly id: RequestId | null;
      readonly code: number;
      readonly message: string;
      readonly data?: unknown;
      readonly hasData: boolean;
    }
  | {
      readonly kind: "invalid";
      readonly code: number;
      readonly id: RequestId | null;
      /** Whether a receiver answers it: true except for invalid responses (answering those could loop). */
      readonly reply: boolean;
      /** Why it is invalid, for the error message. */
      readonly reason: string;
    };

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/** A plain map (not an array, not binary). */
export function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/**
 * A map as received: a plain object (its prototype `Object.prototype` or null), as the decoders
 * make them. What a decode hook put in a map's place (a Date, a Set, a class instance) is not one,
 * where the protocol needs a map (the message, its params, an error: PROTOCOL.md 4.2).
 */
function isPlainMap(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * An integer in [-2^63, 2^64 - 1]. A decoded value cannot tell `1.0` from `1`: the decoders say
 * when a message's `id` or `error.code` was a float ({@link ClassifyOptions}).
 */
export function isInteger(value: unknown): value is number | bigint {
  if (typeof value === "number") return Number.isInteger(value) && value >= -(2 ** 63) && value <= 2 ** 64 - 1;
  if (typeof value === "bigint") return value >= INT64_MIN && value <= UINT64_MAX;
  return false;
}

/** A valid request id: a string or an integer. */
export function isRequestId(value: unknown): value is RequestId {
  return typeof value === "string" || isInteger(value);
}

function has(message: Record<string, unknown>, member: string): boolean {
  return Object.prototype.hasOwnProperty.call(message, member);
}

/** What a decoder knew about a message that its value cannot show. */
export interface ClassifyOptions {
  /** The top-level `id` member was a float (`1.0` on the wire): never an id (D6). */
  readonly floatId?: boolean | undefined;
  /** The `code` of the top-level `error` member was a float (`-32000.0` on the wire): never a code (4.2). */
  readonly floatErrorCode?: boolean | undefined;
}

/** Stands for a float id: not a string, not an integer. */
const FLOAT_ID = Symbol("float id");

/** An invalid message (a module-level function: no closure made per message classified). */
function invalid(id: RequestId | null, reason: string, reply = true): ClassifiedMessage {
  return { kind: "invalid", code: ErrorCodes.InvalidRequest, id, reply, reason };
}

/** Classifies a decoded value per PROTOCOL.md 4.2, steps 1 to 7 in order. */
export function classifyMessage(value: unknown, options?: ClassifyOptions): ClassifiedMessage {

  // 1-2.
  if (Array.isArray(value)) return invalid(null, "batches are not supported");
  if (!isPlainMap(value)) return invalid(null, "a message must be a map");

  // 3.
  const rawId: unknown = options?.floatId === true && has(value, "id") ? FLOAT_ID : value.id;
  const id = isRequestId(rawId) ? rawId : null;
  const hasMethod = has(value, "method");
  const looksLikeResponse = !hasMethod && (has(value, "result") || has(value, "error"));

  // 4. A response-shaped message is not answered even here: an answer to a response could loop.
  if (value.jsonrpc !== "2.0") return invalid(id, 'member "jsonrpc" must be the string "2.0"', !looksLikeResponse);

  // 5.
  if (hasMethod) {
    const method = value.method;
    if (typeof method !== "string") return invalid(id, 'member "method" must be a string');
    if (has(value, "result") || has(value, "error")) {
      return invalid(id, 'a request or notification must not carry "result" or "error"');
    }
    const params = value.params;
    const hasParams = has(value, "params");
    if (has(value, "id")) {
      if (!isRequestId(rawId)) return invalid(null, 'member "id" must be a string or an integer');
      if (hasParams && !isParams(params)) return invalid(id, 'member "params" must be an array or a map');
      return hasParams ? { kind: "request", id: rawId, method, params: params as Params } : { kind: "request", id: rawId, method };
    }
    if (hasParams && !isParams(params)) return invalid(id, 'member "params" must be an array or a map');
    return hasParams ? { kind: "notification", method, params: params as Params } : { kind: "notification", method };
  }

  // 6.
  if (looksLikeResponse) {
    const hasResult = has(value, "result");
    const hasError = has(value, "error");
    if (hasResult && hasError) return invalid(id, 'a response must not carry both "result" and "error"', false);
    if (!has(value, "id")) return invalid(null, 'a response must carry "id"', false);
    if (hasResult) {
      if (!isRequestId(rawId)) return invalid(null, 'a response "id" must be a string or an integer', false);
      return { kind: "response", id: rawId, result: value.result };
    }
    if (rawId !== null && !isRequestId(rawId)) {
      return invalid(null, 'an error response "id" must be a string, an integer or null', false);
    }
    const error = value.error;
    if (!isPlainMap(error)) return invalid(id, 'member "error" must be a map', false);
    if (options?.floatErrorCode === true || !isInteger(error.code)) return invalid(id, 'member "error.code" must be an integer', false);
    if (typeof error.message !== "string") return invalid(id, 'member "error.message" must be a string', false);
    const hasData = has(error, "data");
    return {
      kind: "error_response",
      id: rawId,
      code: Number(error.code),
      message: error.message,
      hasData,
      ...(hasData ? { data: error.data } : {}),
    };
  }

  // 7.
  return invalid(id, 'neither "method" nor "result" nor "error"');
}

/** Params as received: an array or a map, not what a decode hook made of one (a Date, a Set...). */
function isParams(value: unknown): value is Params {
  return Array.isArray(value) || isPlainMap(value);
}
