/**
 * JSON for the control channel (PROTOCOL.md section 3.1).
 *
 * `JSON.stringify` quietly writes `null` for NaN, ±Infinity and `undefined` in arrays, turns a
 * `Uint8Array` into an object of indices and a `Date` into a string; `prepareValue` turns every one of
 * those into a CodecError first. Decoding is strict: valid UTF-8, exactly one JSON text.
 *
 * Integers: a bigint within ±(2^53 - 1) is written as a number; a larger one is a CodecError (the
 * spec says they SHOULD NOT be sent on control; use the data channel). When decoding, a JSON
 * integer beyond ±(2^53 - 1) becomes the nearest `number` (JSON.parse cannot do better on Node 20);
 * a conforming parent does not send such integers on control.
 */
import { isUtf8 } from "node:buffer";

import { CodecError, describeError } from "../errors.js";
import type { Codec } from "./types.js";
import { prepareValue, type ValuePolicy } from "./values.js";

const POLICY: ValuePolicy = { codec: "JSON", binary: false, nonFinite: false, integers: "json" };

/** The control channel's codec. */
export class JsonCodec implements Codec {
  readonly name = "JSON";

  // ignoreBOM keeps a byte-order mark in the text, so JSON.parse rejects it as RFC 8259 says.
  private readonly textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  private readonly textEncoder = new TextEncoder();

  encode(value: unknown): Uint8Array {
    const prepared = prepareValue(value, POLICY);
    return this.textEncoder.encode(JSON.stringify(prepared));
  }

  decode(bytes: Uint8Array): unknown {
    if (!isUtf8(bytes)) throw new CodecError("line is not valid UTF-8");
    const text = this.textDecoder.decode(bytes);
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      // SyntaxError for bad JSON; RangeError if nesting exhausts the stack.
      throw new CodecError(`line is not valid JSON: ${describeError(error)}`, { cause: error });
    }
  }
}
