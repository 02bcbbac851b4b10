/**
 * The protocol's own integer members that the decoders watch for floats (PROTOCOL.md 3.1, 3.2).
 *
 * JavaScript has one number type: `4.0` and `4` decode to the same number, so a float where the
 * protocol needs an integer would pass for one, where the Python and Go SDKs refuse it. The
 * decoders cannot keep the kind in the value, so they note it beside it: while reading, each one
 * records which of these members was written as a float (a JSON token with `.` or an exponent, a
 * MessagePack float 32 or 64), as bits of one number, and the layer that reads the member treats
 * such a one as it treats any other wrong type: the stream layer (wire.ts) for the stream members,
 * the dispatcher for `$/cancelRequest`'s id (`{"id": 7.0}` cancels nothing), the classifier for an
 * error response's code (an invalid response). Only these positions are watched; every other
 * number (a handler's params, an item's value) keeps no trace of its kind, and costs nothing.
 *
 * The envelope's `id` and `$/hello`'s `params.protocol` have flags of their own (D6, D14).
 */

/** One bit per watched member; a decoded message carries their union (0: none was a float). */
export const FloatMember = {
  /** `params["$/stream"].out.window` of an opening request (13.1). */
  window: 1,
  /** `params.stream` of a `$/stream/*` notification: the request id naming the stream (13.2). */
  stream: 2,
  /** `params.seq` of a `$/stream/item` (13.2). */
  seq: 4,
  /** `params.add` of a `$/stream/credit` (13.2). */
  add: 8,
  /** `params.id` of a `$/cancelRequest`: the request id to cancel (9.1). */
  cancelId: 16,
  /** `params.error.code` of a `$/stream/error` (13.2). */
  streamErrorCode: 32,
  /** `error.code` of an error response (4.2, step 6). */
  errorCode: 64,
} as const;

/**
 * The bit of the watched member `key` names, from where it is in the top map's `params`: at
 * `depth` 1 a member of `params` itself, at 2 a member of the map that is `params[paramsKey]`, at 3
 * a member of the map reached from `params` by `paramsKey` then `descriptorKey`. 0 for any other
 * key or place.
 */
export function watchedMember(key: string, depth: number, paramsKey: string | null, descriptorKey: string | null): number {
  if (depth === 1) {
    return key === "stream" ? FloatMember.stream : key === "seq" ? FloatMember.seq : key === "add" ? FloatMember.add : key === "id" ? FloatMember.cancelId : 0;
  }
  if (depth === 2) return key === "code" && paramsKey === "error" ? FloatMember.streamErrorCode : 0;
  return depth === 3 && key === "window" && descriptorKey === "out" && paramsKey === "$/stream" ? FloatMember.window : 0;
}

/** The bit of the watched member `key` names in the top map's `error`, at `depth` 1: its `code`. */
export function watchedErrorMember(key: string, depth: number): number {
  return depth === 1 && key === "code" ? FloatMember.errorCode : 0;
}

/**
 * `floatMembers` with `bit` set when the member was written as a float, cleared otherwise: a
 * repeated key is read by its last occurrence, as its value is (the map keeps the last one).
 */
export function noteMember(floatMembers: number, bit: number, isFloat: boolean): number {
  return isFloat ? floatMembers | bit : floatMembers & ~bit;
}
