/**
 * JSON for the control channel (PROTOCOL.md section 3.1).
 *
 * Encoding: `prepareValue` first turns everything JSON cannot carry (NaN, ±Infinity, binary, a
 * `Date`, a lone surrogate, nesting deeper than 512...) into a CodecError. `JSON.stringify` then
 * writes the value, unless it holds numbers it would write wrong: a bigint (it throws), `-0` (it
 * writes `0`), an integral number beyond 2^53 (it writes rounded digits). Those go through
 * `writeJsonExact`, which writes every integer in [-2^63, 2^64 - 1] as its exact digits and `-0`
 * as `-0.0` (decision D9).
 *
 * Decoding: valid UTF-8, exactly one JSON text. `JSON.parse` reads the lines it cannot get wrong;
 * the others (big integers, surrogate escapes, a float `id` or watched member (float-members.ts), `-0`, deep nesting)
 * go through the exact parser of json-parse.ts, which also recovers the id of a refused message
 * (D10), or of a refused answer (4.8).
 *
 * Hooks (types.ts): the encode hook is called by `prepareValue` for what JSON cannot carry; the
 * decode hook runs over the parsed value (hooks.ts). Without hooks nothing of theirs runs.
 */
import { constants, isUtf8 } from "node:buffer";

import { MAX_NESTING_DEPTH } from "../constants.js";
import { CodecError } from "../errors.js";
import { DecodeHookError, answerId, applyDecodeHook, checkHooks, messageId } from "./hooks.js";
import { JsonParseError, needsExactParser, nestingDepth, parseJsonExact } from "./json-parse.js";
import type { Codec, CodecOptions, DecodeHook, DecodedMessage } from "./types.js";
import { prepareValue, type HookReplay, type ValuePolicy } from "./values.js";

const POLICY: ValuePolicy = { codec: "JSON", codecClass: "JsonCodec", binary: false, nonFinite: false, integers: "json" };
/** The shortest text that can nest deeper than the limit: `[` x 513 and `]` x 513. */
const SHORTEST_TOO_DEEP = 2 * (MAX_NESTING_DEPTH + 1);

/** The control channel's codec. */
export class JsonCodec implements Codec {
  readonly name = "JSON";

  // ignoreBOM keeps a byte-order mark in the text, so the parsers reject it as RFC 8259 says.
  private readonly textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  private readonly textEncoder = new TextEncoder();
  private readonly encodeHooks: HookReplay | undefined;
  private readonly decodeHook: DecodeHook | undefined;

  /**
   * @param options `encodeHook` replaces values JSON cannot carry, `decodeHook` each decoded map
   *   (types.ts says how); both optional.
   */
  constructor(options: CodecOptions = {}) {
    checkHooks(options, "JsonCodec");
    this.encodeHooks = options.encodeHook === undefined ? undefined : { hook: options.encodeHook };
    this.decodeHook = options.decodeHook;
  }

  encode(value: unknown): Uint8Array {
    const found = { exactNumbers: false };
    const prepared = prepareValue(value, POLICY, found, this.encodeHooks);
    return this.textEncoder.encode(found.exactNumbers ? writeJsonExact(prepared) : JSON.stringify(prepared));
  }

  decode(bytes: Uint8Array): unknown {
    return this.decodeMessage(bytes).value;
  }

  /** @internal Decodes a line, telling whether its top-level `id` (D6) and its watched members (float-members.ts) were float tokens. */
  decodeMessage(bytes: Uint8Array): DecodedMessage {
    const decoded = this.parse(bytes);
    return this.decodeHook === undefined ? decoded : withDecodeHook(decoded, this.decodeHook);
  }

  private parse(bytes: Uint8Array): DecodedMessage {
    if (!isUtf8(bytes)) throw new CodecError("line is not valid UTF-8");
    let text: string;
    try {
      text = this.textDecoder.decode(bytes);
    } catch (error) {
      // Valid UTF-8 (checked above) that V8 cannot hold as one string (ERR_STRING_TOO_LONG).
      throw new CodecError(
        `line of ${bytes.byteLength} bytes is longer than a JavaScript string can be ` +
          `(at most ${constants.MAX_STRING_LENGTH} UTF-16 code units): send large data on the data channel`,
        { cause: error },
      );
    }
    if (!needsExactParser(text)) {
      let value: unknown;
      try {
        value = JSON.parse(text) as unknown;
      } catch {
        // A syntax error, or a stack exhausted by nesting: the exact parser says which, exactly.
        return exactly(text);
      }
      // No float token at an `id` nor at a watched member's key (needsExactParser): nothing to note.
      if (text.length < SHORTEST_TOO_DEEP || nestingDepth(value) <= MAX_NESTING_DEPTH) return { value, floatId: false, floatMembers: 0 };
    }
    return exactly(text);
  }
}

function withDecodeHook(decoded: DecodedMessage, hook: DecodeHook): DecodedMessage {
  try {
    return { value: applyDecodeHook(decoded.value, hook), floatId: decoded.floatId, floatMembers: decoded.floatMembers };
  } catch (error) {
    if (!(error instanceof DecodeHookError)) throw error;
    const codecError = new CodecError(error.message, { cause: error.hookError, path: error.path });
    codecError.recoveredId = decoded.floatId ? undefined : messageId(decoded.value);
    codecError.answerId = decoded.floatId ? undefined : answerId(decoded.value);
    throw codecError;
  }
}

function exactly(text: string): DecodedMessage {
  try {
    return parseJsonExact(text);
  } catch (error) {
    if (!(error instanceof JsonParseError)) throw error;
    const codecError = new CodecError(`line is not valid JSON: ${error.message}`);
    codecError.recoveredId = error.recoveredId;
    codecError.answerId = error.answerId;
    throw codecError;
  }
}

/** JSON text for a prepared value (see the module comment); bigints and -0 written exactly. */
export function writeJsonExact(value: unknown): string {
  switch (typeof value) {
    case "number":
      return formatNumber(value);
    case "bigint":
      return value.toString();
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    default:
      break;
  }
  if (value === null) return "null";
  if (Array.isArray(value)) return `[${value.map(writeJsonExact).join(",")}]`;
  const map = value as Record<string, unknown>;
  const members: string[] = [];
  for (const key of Object.keys(map)) {
    const item = map[key];
    if (item !== undefined) members.push(`${JSON.stringify(key)}:${writeJsonExact(item)}`);
  }
  return `{${members.join(",")}}`;
}

const TWO_64 = 2 ** 64;
const MINUS_TWO_63 = -(2 ** 63);

function formatNumber(value: number): string {
  if (Object.is(value, -0)) return "-0.0";
  if (!Number.isInteger(value) || Number.isSafeInteger(value)) return String(value);
  // Integral beyond 2^53: its exact digits inside the integer range, a float token outside it.
  if (value >= MINUS_TWO_63 && value < TWO_64) return BigInt(value).toString();
  return value.toExponential();
}
