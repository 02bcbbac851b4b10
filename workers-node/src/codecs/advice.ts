/**
 * What an encode refusal says: the value's type in words and what to do about it (decision S3).
 * Used only once a value was refused, never on the way of a message that encodes.
 */
import { describeError } from "../errors.js";

/** The codec names a refusal mentions: "JSON" or "MessagePack", and the class to give a hook to. */
export interface CodecNames {
  readonly codec: string;
  readonly codecClass: string;
}

/** "a Date", "an Error", "a Float64Array of 3 elements", "an object of type [object Foo]". */
export function describeObject(value: object): string {
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  if (typeof name === "string" && name !== "") {
    const article = /^[AEIOU]/.test(name) ? "an" : "a";
    if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
      return `${article} ${name} of ${(value as unknown as { length: number }).length} elements`;
    }
    return `${article} ${name}`;
  }
  return `an object of type ${Object.prototype.toString.call(value)}`;
}

/**
 * The conversion to suggest for a value of a type the wire does not carry, ending with where a
 * hook goes: "convert it first (date.toISOString(), ...) or pass an encodeHook to MessagePackCodec".
 */
export function conversionAdvice(value: unknown, names: CodecNames): string {
  const hook = `pass an encodeHook to ${names.codecClass}`;
  if (typeof value === "function") return `functions cannot be sent: send the data it computes, or ${hook}`;
  const convert = conversionFor(value, names);
  return convert === null ? `it has no ${names.codec} form: ${hook}` : `convert it first (${convert}) or ${hook}`;
}

/**
 * What to do when the codec's encode hook was given the value and returned `undefined` (declined
 * it): the hook is already there, so the advice is what it should return for such a value.
 */
export function declinedAdvice(value: unknown, names: CodecNames): string {
  const declined = "the encodeHook returned undefined for it (declined it)";
  if (value instanceof Uint8Array && names.codec === "JSON") {
    return (
      `${declined}: binary has no JSON form, so return a string for it from the hook (base64: ` +
      "Buffer.from(bytes).toString('base64')) or an array of numbers (Array.from(bytes)), or send it on the data channel"
    );
  }
  if (typeof value === "function") return `${declined}: functions cannot be sent; send the data it computes`;
  const convert = conversionFor(value, names);
  const carried = `null, a boolean, number, string, ${names.codec === "JSON" ? "" : "Uint8Array, "}array or plain object`;
  const advice = `${declined}: have the hook return a value the wire carries for it (${carried})`;
  return convert === null ? advice : `${advice}; for example, convert ${convert}`;
}

function conversionFor(value: unknown, names: CodecNames): string | null {
  if (typeof value === "symbol") return "a symbol to a string: symbol.description";
  if (typeof value !== "object" || value === null) return null;
  if (value instanceof Date) return "a Date to an ISO string, date.toISOString(), or to a number, date.getTime()";
  if (value instanceof Map) return "a Map to a plain object with string keys: Object.fromEntries(map)";
  if (value instanceof Set) return "a Set to an array: Array.from(set)";
  if (ArrayBuffer.isView(value)) {
    if (names.codec === "JSON") return "a typed array to an array: Array.from(array)";
    return (
      "a typed array to its bytes: new Uint8Array(a.buffer, a.byteOffset, a.byteLength); " +
      "for an array with a dtype and shape see the ndarray recipe in docs/codec-hooks.md"
    );
  }
  if (value instanceof ArrayBuffer || (typeof SharedArrayBuffer === "function" && value instanceof SharedArrayBuffer)) {
    return names.codec === "JSON" ? "the bytes to a string, or send them on the data channel" : "an ArrayBuffer to a Uint8Array: new Uint8Array(buffer)";
  }
  if (value instanceof Error) return "an error to a plain object: { name: error.name, message: error.message }";
  return "an instance to a plain object: { ...value }, or the fields you need; only plain objects, arrays and primitives are sent";
}

/** A hook's error as the other SDKs name it: "RangeError: not a point". */
export function describeHookError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : describeError(error);
}

/** The advice for an integer outside the range the wire carries. */
export const INTEGER_RANGE_ADVICE = "outside [-2^63, 2^64 - 1], the integer range of aspect-ipc: send it as a string, value.toString()";
