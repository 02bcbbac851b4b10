/**
 * MessagePack decoding with the aspect-ipc mapping (PROTOCOL.md 3.2). Pure code: bytes in, values out.
 *
 * One pass over the bytes checks and builds: exactly one object per payload, no ext types (nor
 * the timestamp extension), string map keys only, valid UTF-8 in every str, a nesting limit, and
 * every declared length checked against the bytes actually present before anything is sized by
 * it, so that a header declaring 4 GiB (or 2^32 array items) fails without allocating for it.
 *
 * Values: integers within ±(2^53 - 1) are numbers, others bigints; float 32 is widened; bin is a
 * `Uint8Array` VIEW of the input (no copy: the caller hands over a buffer it does not reuse); maps
 * are plain objects whose members are all own data properties, `"__proto__"` included (defined,
 * not assigned: an assignment would set the object's prototype instead of adding a member).
 *
 * Depth counts containers, the top level being depth 1 (decision D11): a container at depth 513
 * is an error, empty or not.
 *
 * A decode hook (types.ts) gets each map as soon as it is built and checked, so innermost first;
 * what it returns takes the map's place.
 *
 * Floats where the protocol needs integers (`id`, `params.protocol`, float-members.ts) are noted
 * by the head byte of their value as their key is read, wherever the method is. Inside `params`
 * and the top map's `error` a key is compared with those names only when its value is a float (or
 * one was): a byte test per key.
 */
import { constants } from "node:buffer";

import { MAX_NESTING_DEPTH } from "../constants.js";
import { describeHookError } from "./advice.js";
import { noteMember, watchedErrorMember, watchedMember } from "./float-members.js";
import { messagePackPath } from "./msgpack-path.js";
import { recoverMessagePackIds } from "./msgpack-recover.js";
import type { DecodeHook } from "./types.js";

/**
 * Thrown by {@link decodeMessagePack}; the codec wraps it into a CodecError. `syntax` is true when
 * the bytes are not a readable MessagePack object at all (truncated, a never-used byte, trailing
 * bytes), false when they are but break the aspect-ipc mapping (ext types, non-string keys, invalid
 * UTF-8, nesting): only then may the message's id be recovered (PROTOCOL.md 4.8).
 */
export class MessagePackDecodeError extends Error {
  constructor(
    message: string,
    readonly syntax = true,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The decode hook threw (its error is the `cause`): the bytes themselves were fine. `path` is
 * where the map it failed on sits in the message (`$.params`).
 */
export class DecodeHookFailure extends MessagePackDecodeError {
  constructor(
    readonly path: string,
    hookError: unknown,
  ) {
    super(`decode hook failed on the map at ${path} (MessagePack): ${describeHookError(hookError)}`, false, { cause: hookError });
  }
}

/**
 * A str is valid but longer than a JavaScript string can be: the bytes are fine, this side cannot
 * hold them as a string (its message says so; the frame is not malformed).
 */
export class StringTooLong extends MessagePackDecodeError {}

/** Where the decode hook threw, inside the walk (the path is worked out after it, from the offset). */
class HookThrew extends Error {
  constructor(
    readonly offset: number,
    readonly hookError: unknown,
  ) {
    super("decode hook failed");
  }
}

/** A decoded message, and whether the top-level map's `id` member was a float (never an id, D6). */
export interface DecodedEnvelope {
  readonly value: unknown;
  readonly floatId: boolean;
  /** Whether `params.protocol` was a float (a `$/hello` with protocol 1.0 is refused: D14). */
  readonly floatProtocol: boolean;
  /** Which of the watched members of float-members.ts were floats: bits of `FloatMember`. */
  readonly floatMembers: number;
}

/** Strings up to this many bytes are decoded in JavaScript when they are ASCII; longer ones natively. */
const SHORT_STRING = 8;
const TWO_32 = 0x1_0000_0000;
/** The longest string V8 makes, in UTF-16 code units (buffer.constants.MAX_STRING_LENGTH). */
const MAX_STRING_LENGTH = constants.MAX_STRING_LENGTH;

// ignoreBOM keeps a leading U+FEFF as part of the string: it is data, not a byte-order mark.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Decodes exactly one object from `bytes` (a plain Uint8Array: bin values are views of it).
 * @throws {MessagePackDecodeError} describing the first problem and its offset.
 */
export function decodeMessagePack(bytes: Uint8Array): unknown {
  return decodeMessagePackEnvelope(bytes).value;
}

/**
 * As {@link decodeMessagePack}, also telling whether the top-level `id` member was a float.
 * @throws {MessagePackDecodeError} with `recoveredId` set when a request's id could be recovered,
 *   `answerId` when an answer's could (PROTOCOL.md 4.8).
 */
export function decodeMessagePackEnvelope(bytes: Uint8Array, decodeHook?: DecodeHook): DecodedEnvelope {
  if (bytes.byteLength === 0) throw new MessagePackDecodeError("empty payload: no MessagePack object");
  const reader = new Reader(bytes, decodeHook);
  let value: unknown;
  try {
    try {
      value = reader.value(0);
    } catch (error) {
      if (error instanceof HookThrew) throw new DecodeHookFailure(messagePackPath(bytes, error.offset), error.hookError);
      throw error;
    }
  } catch (error) {
    if (error instanceof MessagePackDecodeError && !error.syntax) {
      const { requestId, answerId } = recoverMessagePackIds(bytes);
      throw Object.assign(error, { recoveredId: requestId, answerId });
    }
    throw error;
  }
  if (reader.pos !== bytes.byteLength) {
    throw new MessagePackDecodeError(`trailing bytes: one object ends at offset ${reader.pos}, the payload has ${bytes.byteLength} bytes`);
  }
  return { value, floatId: reader.floatId, floatProtocol: reader.floatProtocol, floatMembers: reader.floatMembers };
}

class Reader {
  pos = 0;
  /** Whether the top-level map's `id` member was a float 32/64. */
  floatId = false;
  /** Whether `params.protocol` (of a `$/hello`) was a float 32/64. */
  floatProtocol = false;
  /** Bits of `FloatMember`: the watched members (float-members.ts) written as float 32/64. */
  floatMembers = 0;
  /** In the top map's `params`, or in its `error`; the last keys read at depth 1 and 2 of `params` (the way to depth 3). */
  private inParams = false;
  private inError = false;
  private paramsKey = "";
  private descriptorKey = "";
  private readonly view: DataView;
  private readonly end: number;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly decodeHook: DecodeHook | undefined,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.end = bytes.byteLength;
  }

  value(depth: number): unknown {
    this.need(1, "object");
    const start = this.pos;
    const head = this.bytes[this.pos++] as number;
    if (head <= 0x7f) return head;
    if (head >= 0xe0) return head - 0x100;
    if (head >= 0xa0 && head <= 0xbf) return this.string(head & 0x1f, start);
    if (head >= 0x90 && head <= 0x9f) return this.array(head & 0x0f, depth, start);
    if (head >= 0x80 && head <= 0x8f) return this.map(head & 0x0f, depth, start);
    const view = this.view;
    switch (head) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
      case 0xc5:
      case 0xc6: {
        const size = this.length(head - 0xc4);
        this.need(size, "bin");
        this.pos += size;
        return this.bytes.subarray(this.pos - size, this.pos);
      }
      case 0xca:
        this.need(4, "number");
        this.pos += 4;
        return view.getFloat32(this.pos - 4);
      case 0xcb:
        this.need(8, "float 64");
        this.pos += 8;
        return view.getFloat64(this.pos - 8);
      case 0xcc:
        this.need(1, "number");
        return this.bytes[this.pos++] as number;
      case 0xcd:
        this.need(2, "number");
        this.pos += 2;
        return view.getUint16(this.pos - 2);
      case 0xce:
        this.need(4, "number");
        this.pos += 4;
        return view.getUint32(this.pos - 4);
      case 0xcf: {
        this.need(8, "int 64");
        const high = view.getUint32(this.pos);
        const value = high < 0x20_0000 ? high * TWO_32 + view.getUint32(this.pos + 4) : view.getBigUint64(this.pos);
        this.pos += 8;
        return value;
      }
      case 0xd0:
        this.need(1, "number");
        return view.getInt8(this.pos++);
      case 0xd1:
        this.need(2, "number");
        this.pos += 2;
        return view.getInt16(this.pos - 2);
      case 0xd2:
        this.need(4, "number");
        this.pos += 4;
        return view.getInt32(this.pos - 4);
      case 0xd3: {
        this.need(8, "int 64");
        const value = view.getInt32(this.pos) * TWO_32 + view.getUint32(this.pos + 4);
        const exact = Number.isSafeInteger(value) ? value : view.getBigInt64(this.pos);
        this.pos += 8;
        return exact;
      }
      case 0xd9:
      case 0xda:
      case 0xdb:
        return this.string(this.length(head - 0xd9), start);
      case 0xdc:
      case 0xdd:
        return this.array(this.length(head - 0xdc + 1), depth, start);
      case 0xde:
      case 0xdf:
        return this.map(this.length(head - 0xde + 1), depth, start);
      case 0xc1:
        throw new MessagePackDecodeError(`byte 0xc1 at offset ${start} is never used in MessagePack`);
      default:
        // 0xc7-0xc9 and 0xd4-0xd8: ext 8/16/32 and fixext 1-16.
        throw new MessagePackDecodeError(
          `ext type at offset ${start} (head byte 0x${head.toString(16)}): ext types, including timestamps, are not part of the aspect-ipc mapping`,
          false,
        );
    }
  }

  private array(count: number, depth: number, start: number): unknown[] {
    const array: unknown[] = [];
    // Every item takes at least one byte: a count larger than what is left is a lie, caught
    // before anything is sized by it.
    this.need(count, "array");
    this.checkDepth(depth, start);
    for (let index = 0; index < count; index++) array.push(this.value(depth + 1));
    return array;
  }

  private map(count: number, depth: number, start: number): unknown {
    const map: Record<string, unknown> = {};
    this.need(count * 2, "map");
    this.checkDepth(depth, start);
    for (let index = 0; index < count; index++) {
      const key = this.key();
      if (depth === 0) {
        this.inParams = key === "params";
        this.inError = key === "error";
        this.paramsKey = "";
        this.descriptorKey = "";
        if (key === "id") this.floatId = this.atFloat();
      } else if (this.inParams && depth <= 3) {
        if (depth === 1) {
          this.paramsKey = key;
          this.descriptorKey = "";
        } else if (depth === 2) {
          this.descriptorKey = key;
        }
        // Once a float was noted, every watched key is looked at again: a repeated one is judged
        // by its last occurrence, as its value is.
        if (this.atFloat() || this.floatMembers !== 0 || this.floatProtocol) this.noteParamsMember(key, depth);
      } else if (this.inError && depth === 1) {
        // An error response's `error.code` (4.2), judged likewise.
        if (this.atFloat() || this.floatMembers !== 0) this.floatMembers = noteMember(this.floatMembers, watchedErrorMember(key, depth), this.atFloat());
      }
      if (key === "__proto__") {
        Object.defineProperty(map, key, { value: this.value(depth + 1), writable: true, enumerable: true, configurable: true });
      } else {
        map[key] = this.value(depth + 1);
      }
    }
    return this.decodeHook === undefined ? map : this.hooked(map, start);
  }

  /**
   * A key at `depth` 1 to 3 inside the top map's `params`, its value not read yet: notes whether
   * that value is a float when the key is `protocol` or a watched member. A depth-3 map is the
   * value of the last depth-2 key, in the value of the last depth-1 key (an array in between adds
   * a depth; the depth-2 key is cleared at each depth-1 key).
   */
  private noteParamsMember(key: string, depth: number): void {
    const isFloat = this.atFloat();
    if (depth === 1 && key === "protocol") this.floatProtocol = isFloat;
    else this.floatMembers = noteMember(this.floatMembers, watchedMember(key, depth, this.paramsKey, this.descriptorKey), isFloat);
  }

  private hooked(map: Record<string, unknown>, start: number): unknown {
    try {
      return (this.decodeHook as DecodeHook)(map);
    } catch (error) {
      // Not a syntax error: the message's id can still be recovered for the -32700 answer.
      throw new HookThrew(start, error);
    }
  }

  /** A map key: a str. Anything else is read far enough to report the first problem in stream order. */
  private key(): string {
    this.need(1, "object");
    const start = this.pos;
    const head = this.bytes[this.pos] as number;
    if (head >= 0xa0 && head <= 0xbf) {
      this.pos++;
      return this.string(head & 0x1f, start);
    }
    if (head >= 0xd9 && head <= 0xdb) {
      this.pos++;
      return this.string(this.length(head - 0xd9), start);
    }
    if (head === 0xc1 || (head >= 0xc7 && head <= 0xc9) || (head >= 0xd4 && head <= 0xd8)) {
      this.value(MAX_NESTING_DEPTH); // throws the never-used byte or ext type error
    }
    this.skipHeader(head);
    throw new MessagePackDecodeError(`map key at offset ${start} is not a string (head byte 0x${head.toString(16)}): map keys must be strings`, false);
  }

  /** Reads the head and fixed-size part of a non-str item, checking that they are present. */
  private skipHeader(head: number): void {
    this.pos++;
    if (head <= 0x7f || head >= 0xe0 || (head >= 0x80 && head <= 0x9f) || head === 0xc0 || head === 0xc2 || head === 0xc3) return;
    if (head >= 0xc4 && head <= 0xc6) {
      const size = this.length(head - 0xc4);
      this.need(size, "bin");
    } else if (head >= 0xdc) {
      this.length(head >= 0xde ? head - 0xde + 1 : head - 0xdc + 1);
    } else {
      const sizes: Record<number, number> = { 0xca: 4, 0xcb: 8, 0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, 0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8 };
      this.need(sizes[head] ?? 0, "number");
    }
  }

  private string(size: number, start: number): string {
    this.need(size, "str");
    const bytes = this.bytes;
    const from = this.pos;
    const to = from + size;
    this.pos = to;
    if (size <= SHORT_STRING) {
      let text = "";
      for (let index = from; index < to; index++) {
        const byte = bytes[index] as number;
        if (byte >= 0x80) return this.decodeUtf8(from, to, start);
        text += String.fromCharCode(byte);
      }
      return text;
    }
    return this.decodeUtf8(from, to, start);
  }

  private decodeUtf8(from: number, to: number, start: number): string {
    try {
      return utf8.decode(this.bytes.subarray(from, to));
    } catch (error) {
      // V8 refuses a string longer than its limit (ERR_STRING_TOO_LONG), however valid the bytes;
      // it can only be that when there are more bytes than the limit (one unit takes a byte or more).
      if (to - from > MAX_STRING_LENGTH && (error as { code?: unknown } | null)?.code !== "ERR_ENCODING_INVALID_ENCODED_DATA") {
        throw new StringTooLong(
          `str at offset ${start} of ${to - from} bytes is longer than a JavaScript string can be ` +
            `(at most ${MAX_STRING_LENGTH} UTF-16 code units): send it as binary, or in smaller strings`,
          false,
        );
      }
      throw new MessagePackDecodeError(`str at offset ${start} is not valid UTF-8`, false);
    }
  }

  /** Reads a 1-, 2- or 4-byte big-endian length (width index 0, 1, 2). */
  private length(width: number): number {
    const size = 1 << width;
    this.need(size, "length");
    const pos = this.pos;
    this.pos += size;
    return size === 1 ? (this.bytes[pos] as number) : size === 2 ? this.view.getUint16(pos) : this.view.getUint32(pos);
  }

  private need(count: number, what: string): void {
    if (this.end - this.pos < count) {
      throw new MessagePackDecodeError(`truncated ${what} at offset ${this.pos}: ${count} more bytes declared, ${this.end - this.pos} present`);
    }
  }

  private atFloat(): boolean {
    const head = this.bytes[this.pos];
    return head === 0xca || head === 0xcb;
  }

  private checkDepth(depth: number, start: number): void {
    if (depth >= MAX_NESTING_DEPTH) {
      throw new MessagePackDecodeError(`nesting deeper than ${MAX_NESTING_DEPTH} levels at offset ${start}`, false);
    }
  }
}
