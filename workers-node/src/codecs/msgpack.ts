/**
 * MessagePack for the data channel (PROTOCOL.md section 3.2), on top of `@msgpack/msgpack`.
 *
 * The library is configured and guarded so that the mapping is exactly the spec's:
 * - integers: the shortest int format; integers beyond ±(2^53 - 1) decode to `bigint` and `bigint`
 *   encodes to int 64 / uint 64, while every safe integer stays a `number` both ways (the library's
 *   `useBigInt64` alone would decode every int 64 as a bigint and write large numbers as floats:
 *   `prepareValue` and `normalizeIntegers` fix both directions);
 * - non-integral numbers are float 64, never float 32; float 32 is accepted and widened;
 * - binary is `Uint8Array` both ways, written as bin;
 * - ext types (the library's Date/timestamp included), non-string map keys, invalid UTF-8 and
 *   trailing bytes are codec errors, found by `scanMessagePack` before the library runs.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";

import { MAX_NESTING_DEPTH } from "../constants.js";
import { CodecError, describeError } from "../errors.js";
import { ScanError, scanMessagePack } from "./msgpack-scan.js";
import type { Codec } from "./types.js";
import { prepareValue, type ValuePolicy } from "./values.js";

const POLICY: ValuePolicy = { codec: "MessagePack", binary: true, nonFinite: true, integers: "msgpack" };
const MISMATCH_HINT = "do both sides use MessagePackCodec?";

/** The data channel's codec. */
export class MessagePackCodec implements Codec {
  readonly name = "MessagePack";

  private readonly encoder = new Encoder({
    useBigInt64: true,
    ignoreUndefined: true,
    maxDepth: MAX_NESTING_DEPTH + 1,
  });

  private readonly decoder = new Decoder({
    useBigInt64: true,
    mapKeyConverter: (key: unknown) => {
      // scanMessagePack already guarantees string keys; this keeps the library honest.
      if (typeof key !== "string") throw new CodecError("map keys must be strings");
      return key;
    },
  });

  encode(value: unknown): Uint8Array {
    const prepared = prepareValue(value, POLICY);
    try {
      return this.encoder.encode(prepared);
    } catch (error) {
      throw new CodecError(`cannot encode value as MessagePack: ${describeError(error)}`, { cause: error });
    }
  }

  decode(input: Uint8Array): unknown {
    // A plain view of the same memory: binary values are sliced from it, and they must arrive as
    // Uint8Array, not as the Buffer subclass Node's streams hand out.
    const bytes = Object.getPrototypeOf(input) === Uint8Array.prototype ? input : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    let has64BitIntegers: boolean;
    try {
      ({ has64BitIntegers } = scanMessagePack(bytes));
    } catch (error) {
      if (error instanceof ScanError) {
        throw new CodecError(`frame is not valid MessagePack (${error.message}): ${MISMATCH_HINT}`);
      }
      throw error;
    }
    let value: unknown;
    try {
      value = this.decoder.decode(bytes);
    } catch (error) {
      // After a successful scan, only the library's own refusals remain (a "__proto__" map key).
      throw new CodecError(`frame is not valid MessagePack (${describeError(error)}): ${MISMATCH_HINT}`, { cause: error });
    }
    return has64BitIntegers ? normalizeIntegers(value) : value;
  }
}

/** Turns every bigint within ±(2^53 - 1) back into a number, in place (the value is freshly decoded). */
function normalizeIntegers(value: unknown): unknown {
  if (typeof value === "bigint") {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) value[index] = normalizeIntegers(value[index]);
  } else if (value !== null && typeof value === "object" && !(value instanceof Uint8Array)) {
    const map = value as Record<string, unknown>;
    for (const key of Object.keys(map)) map[key] = normalizeIntegers(map[key]);
  }
  return value;
}
