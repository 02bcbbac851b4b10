/**
 * MessagePack encoding with the aspect-ipc mapping (PROTOCOL.md 3.2). Pure code: values in, bytes out.
 *
 * Theory of operation. One walk over the value both checks it and writes it. Bytes go into a
 * scratch buffer that is reused from one message to the next and copied out at the end (one
 * short copy for a typical message); a message that outgrows the scratch buffer gets a buffer of
 * its own, sized for it, which is handed out as it is. So a large binary value is copied once,
 * from the caller's Uint8Array into the message, and `room` bytes can be left free in front for
 * the frame header, which the framing then writes in place instead of copying the payload again.
 *
 * For a frame (`encodeParts`), a binary of SPLICE_MIN_SIZE bytes or more is not copied at all: its
 * header is written, and the caller's Uint8Array itself is returned as a part of the frame, to be
 * written from where it is (a writev of the parts). What is copied is then the message around it.
 *
 * A buffer grown for a large message is reused for the next large one once its frame was written
 * (`release`): fresh memory of that size costs the kernel a page fault per 4 KiB on first touch,
 * a third of a 16 MiB echo. At most one such spare buffer is kept.
 *
 * The walk enforces exactly what `prepareValue` (values.ts) enforces, but without keeping track of
 * where it is: when something is unencodable, the value is walked again by `prepareValue`, which
 * raises the CodecError naming the type and its path. The fast walk never has to build a message.
 *
 * An encode hook (types.ts) is called where the walk meets a value it cannot carry; the replacement
 * is written in its place. Each call's outcome is recorded for the slow walk, which replays them
 * rather than calling the hook again, so that it fails where the fast walk failed.
 *
 * Integers take the shortest form; an integer beyond 32 bits can only be int 64 / uint 64, for a
 * `number` and a `bigint` alike. A non-integral or unsafe `number` (NaN, ±Infinity, 2^53) is
 * float 64, and so is `-0` (decision D9: -0.0 is a float, whose sign the receiver keeps).
 */
import { MAX_NESTING_DEPTH } from "../constants.js";
import { CodecError, describeError } from "../errors.js";
import type { EncodeHook } from "./types.js";
import { MAX_HOOK_APPLICATIONS, prepareValue, type HookOutcome, type ValuePolicy } from "./values.js";

/** The MessagePack policy of `prepareValue`, used to explain a refusal. */
export const MSGPACK_POLICY: ValuePolicy = { codec: "MessagePack", codecClass: "MessagePackCodec", binary: true, nonFinite: true, integers: "msgpack" };

const SCRATCH_SIZE = 16 * 1024;
/** Grown buffers at least this large are kept for reuse once released. */
const SPARE_MIN_SIZE = 256 * 1024;
/** Strings up to this many UTF-16 units are measured and written in JavaScript; longer ones natively. */
const SHORT_STRING = 32;
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;
const TWO_32 = 0x1_0000_0000;
/**
 * Binaries this large or larger are spliced into a frame (written from the caller's memory) rather
 * than copied into it: below this, one copy costs less than one more buffer to write.
 */
export const SPLICE_MIN_SIZE = 64 * 1024;

/** Thrown inside the walk when a value has no MessagePack form; `prepareValue` says why. */
class Unencodable extends Error {}

/** Encodes values; one per channel (it keeps a scratch buffer). Not reentrant. */
export class MessagePackEncoder {
  private readonly scratch = Buffer.allocUnsafeSlow(SCRATCH_SIZE);
  private bytes: Buffer = this.scratch;
  private view: DataView = new DataView(this.scratch.buffer, this.scratch.byteOffset, this.scratch.byteLength);
  private pos = 0;
  /** A released grown buffer, reused before allocating a new one. */
  private spare: Buffer | null = null;
  /** Grown buffers handed out in results, which `release` may take back. */
  private readonly handedOut = new WeakMap<ArrayBufferLike, Buffer>();
  /** The encode hook's outcomes in the current encode (for the slow walk), or null before its first call. */
  private hookOutcomes: HookOutcome[] | null = null;
  /** Hook applications on the way to the value being written. */
  private hookDepth = 0;
  private inHook = false;
  /** Whether the current encode splices large binaries in (encodeParts) instead of copying them. */
  private splicing = false;
  /** The binaries spliced in, and where (their offsets in the bytes written here). */
  private spliced: Uint8Array[] = [];
  private splicedAt: number[] = [];

  constructor(private readonly encodeHook?: EncodeHook) {}

  /**
   * The encoding of `value`, after `room` unused bytes (0 for the bare encoding).
   * @throws {CodecError} naming the type and the path of the first unencodable part.
   */
  encode(value: unknown, room = 0): Uint8Array {
    return this.run(value, room, false) as Uint8Array;
  }

  /**
   * The encoding of `value` after `room` unused bytes, as {@link encode} makes it, except that
   * binaries of {@link SPLICE_MIN_SIZE} bytes or more are not copied: the result is then the list
   * of parts to write in order (the bytes made here, the caller's binaries themselves, ...), the
   * first of which starts with the `room` bytes. A single Uint8Array when nothing was spliced.
   * @throws {CodecError} as {@link encode} does.
   */
  encodeParts(value: unknown, room: number): Uint8Array | Uint8Array[] {
    return this.run(value, room, true);
  }

  private run(value: unknown, room: number, splicing: boolean): Uint8Array | Uint8Array[] {
    if (this.inHook) {
      throw new CodecError("MessagePackCodec.encode was called from inside its own encodeHook: return the replacement value instead");
    }
    this.use(this.scratch);
    this.pos = room;
    this.splicing = splicing;
    try {
      if (value === undefined) throw new Unencodable("undefined");
      this.write(value, 0);
    } catch (error) {
      this.use(this.scratch);
      const outcomes = this.hookOutcomes;
      this.hookOutcomes = null;
      this.hookDepth = 0;
      this.unsplice();
      if (error instanceof Unencodable) {
        const hook = this.encodeHook;
        prepareValue(value, MSGPACK_POLICY, undefined, hook === undefined ? undefined : { hook, outcomes }); // throws the detailed error
      }
      if (error instanceof CodecError) throw error;
      // A getter that threw, a buffer that could not be allocated: still a codec error for the caller.
      throw new CodecError(`cannot encode value as MessagePack: ${describeError(error)}`, { cause: error });
    }
    // Replacements the hook made may be large: not kept past the message.
    if (this.hookOutcomes !== null) this.hookOutcomes = null;
    const length = this.pos;
    let own: Uint8Array;
    // Plain Uint8Array views (not Buffers): what the codec has always returned.
    if (this.bytes !== this.scratch) {
      own = new Uint8Array(this.bytes.buffer, this.bytes.byteOffset, length);
      if (this.bytes.byteLength >= SPARE_MIN_SIZE) this.handedOut.set(this.bytes.buffer, this.bytes);
      this.use(this.scratch);
    } else {
      const copy = Buffer.allocUnsafe(length);
      this.scratch.copy(copy, 0, 0, length);
      own = new Uint8Array(copy.buffer, copy.byteOffset, length);
    }
    return this.spliced.length === 0 ? own : this.parts(own);
  }

  /** `own` (the bytes written here) cut where binaries were spliced in, with them in between. */
  private parts(own: Uint8Array): Uint8Array[] {
    const parts: Uint8Array[] = [];
    const { spliced, splicedAt } = this;
    let from = 0;
    for (let index = 0; index < spliced.length; index++) {
      const at = splicedAt[index] as number;
      if (at > from) parts.push(own.subarray(from, at));
      parts.push(spliced[index] as Uint8Array);
      from = at;
    }
    if (from < own.byteLength) parts.push(own.subarray(from));
    this.unsplice();
    return parts;
  }

  /** Forgets the binaries spliced in (they are the caller's: not kept past the message). */
  private unsplice(): void {
    this.splicing = false;
    if (this.spliced.length > 0) {
      this.spliced = [];
      this.splicedAt = [];
    }
  }

  /**
   * Says that `encoded`, a result of {@link encode}, is no longer read by anyone (its frame was
   * written): its memory may be reused for a later message. Anything else is ignored.
   */
  release(encoded: Uint8Array): void {
    const buffer = this.handedOut.get(encoded.buffer);
    if (buffer === undefined) return;
    this.handedOut.delete(encoded.buffer);
    if (this.spare === null || this.spare.byteLength < buffer.byteLength) this.spare = buffer;
  }

  private use(buffer: Buffer): void {
    if (this.bytes === buffer) return;
    this.bytes = buffer;
    this.view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  /** Makes room for `count` more bytes, moving to a larger buffer (at least twice as large) if needed. */
  private ensure(count: number): void {
    const needed = this.pos + count;
    if (needed <= this.bytes.byteLength) return;
    const size = Math.max(needed + 64, this.bytes.byteLength * 2);
    let grown: Buffer;
    if (this.spare !== null && this.spare.byteLength >= size) {
      grown = this.spare;
      this.spare = null;
    } else {
      grown = Buffer.allocUnsafeSlow(size);
    }
    this.bytes.copy(grown, 0, 0, this.pos);
    this.use(grown);
  }

  private write(value: unknown, depth: number): void {
    switch (typeof value) {
      case "string":
        this.string(value);
        return;
      case "number":
        // -0 is a float (D9): float 64 keeps its sign, an integer 0 would lose it.
        if (Number.isSafeInteger(value) && (value !== 0 || 1 / value > 0)) this.integer(value);
        else this.float(value);
        return;
      case "boolean":
        this.ensure(1);
        this.bytes[this.pos++] = value ? 0xc3 : 0xc2;
        return;
      case "bigint":
        this.bigint(value);
        return;
      case "object":
        if (value === null) {
          this.ensure(1);
          this.bytes[this.pos++] = 0xc0;
          return;
        }
        if (value instanceof Uint8Array) {
          this.binary(value);
          return;
        }
        if (depth >= MAX_NESTING_DEPTH) throw new Unencodable("nesting too deep");
        if (Array.isArray(value)) {
          this.array(value, depth);
          return;
        }
        {
          const proto: unknown = Object.getPrototypeOf(value);
          if (proto !== Object.prototype && proto !== null) {
            this.hooked(value, depth);
            return;
          }
        }
        this.map(value as Record<string, unknown>, depth);
        return;
      case "function":
      case "symbol":
        this.hooked(value, depth);
        return;
      default:
        throw new Unencodable(typeof value);
    }
  }

  /** A value of a type MessagePack does not carry: the encode hook's replacement goes in its place. */
  private hooked(value: unknown, depth: number): void {
    const hook = this.encodeHook;
    if (hook === undefined || this.hookDepth >= MAX_HOOK_APPLICATIONS) throw new Unencodable("not carried");
    const outcomes = (this.hookOutcomes ??= []);
    let replacement: unknown;
    this.inHook = true;
    try {
      replacement = hook(value);
    } catch (error) {
      outcomes.push({ input: value, output: error, failed: true });
      throw new Unencodable("encode hook failed");
    } finally {
      this.inHook = false;
    }
    outcomes.push({ input: value, output: replacement, failed: false });
    if (replacement === undefined) throw new Unencodable("encode hook declined");
    this.hookDepth++;
    this.write(replacement, depth);
    this.hookDepth--;
  }

  private integer(value: number): void {
    this.ensure(9);
    const pos = this.pos;
    const view = this.view;
    if (value >= 0) {
      if (value < 0x80) {
        this.bytes[pos] = value;
        this.pos = pos + 1;
      } else if (value < 0x100) {
        this.bytes[pos] = 0xcc;
        this.bytes[pos + 1] = value;
        this.pos = pos + 2;
      } else if (value < 0x1_0000) {
        this.bytes[pos] = 0xcd;
        view.setUint16(pos + 1, value);
        this.pos = pos + 3;
      } else if (value < TWO_32) {
        this.bytes[pos] = 0xce;
        view.setUint32(pos + 1, value);
        this.pos = pos + 5;
      } else {
        this.bytes[pos] = 0xcf;
        view.setUint32(pos + 1, Math.floor(value / TWO_32));
        view.setUint32(pos + 5, value >>> 0);
        this.pos = pos + 9;
      }
    } else if (value >= -0x20) {
      this.bytes[pos] = value & 0xff;
      this.pos = pos + 1;
    } else if (value >= -0x80) {
      this.bytes[pos] = 0xd0;
      view.setInt8(pos + 1, value);
      this.pos = pos + 2;
    } else if (value >= -0x8000) {
      this.bytes[pos] = 0xd1;
      view.setInt16(pos + 1, value);
      this.pos = pos + 3;
    } else if (value >= -0x8000_0000) {
      this.bytes[pos] = 0xd2;
      view.setInt32(pos + 1, value);
      this.pos = pos + 5;
    } else {
      const high = Math.floor(value / TWO_32);
      this.bytes[pos] = 0xd3;
      view.setInt32(pos + 1, high);
      view.setUint32(pos + 5, value - high * TWO_32);
      this.pos = pos + 9;
    }
  }

  private float(value: number): void {
    this.ensure(9);
    this.bytes[this.pos] = 0xcb;
    this.view.setFloat64(this.pos + 1, value);
    this.pos += 9;
  }

  private bigint(value: bigint): void {
    if (value >= -0x8000_0000n && value < 0x1_0000_0000n) {
      this.integer(Number(value));
      return;
    }
    if (value < INT64_MIN || value > UINT64_MAX) throw new Unencodable("integer out of range");
    this.ensure(9);
    if (value >= 0n) {
      this.bytes[this.pos] = 0xcf;
      this.view.setBigUint64(this.pos + 1, value);
    } else {
      this.bytes[this.pos] = 0xd3;
      this.view.setBigInt64(this.pos + 1, value);
    }
    this.pos += 9;
  }

  private string(value: string): void {
    const length = value.length;
    if (length > SHORT_STRING) {
      if (!value.isWellFormed()) throw new Unencodable("lone surrogate");
      const byteLength = Buffer.byteLength(value, "utf8");
      this.header(byteLength, 0xa0, 0xd9);
      this.ensure(byteLength);
      this.pos += this.bytes.write(value, this.pos, byteLength, "utf8");
      return;
    }
    // Short: count the UTF-8 bytes (refusing lone surrogates), then write them, all in JavaScript.
    let byteLength = 0;
    for (let index = 0; index < length; index++) {
      const unit = value.charCodeAt(index);
      if (unit < 0x80) byteLength += 1;
      else if (unit < 0x800) byteLength += 2;
      else if (unit < 0xd800 || unit > 0xdfff) byteLength += 3;
      else {
        const next = index + 1 < length ? value.charCodeAt(index + 1) : 0;
        if (unit > 0xdbff || next < 0xdc00 || next > 0xdfff) throw new Unencodable("lone surrogate");
        byteLength += 4;
        index++;
      }
    }
    this.header(byteLength, 0xa0, 0xd9);
    this.ensure(byteLength);
    const bytes = this.bytes;
    let pos = this.pos;
    for (let index = 0; index < length; index++) {
      let code = value.charCodeAt(index);
      if (code < 0x80) {
        bytes[pos++] = code;
      } else if (code < 0x800) {
        bytes[pos++] = 0xc0 | (code >> 6);
        bytes[pos++] = 0x80 | (code & 0x3f);
      } else if (code < 0xd800 || code > 0xdfff) {
        bytes[pos++] = 0xe0 | (code >> 12);
        bytes[pos++] = 0x80 | ((code >> 6) & 0x3f);
        bytes[pos++] = 0x80 | (code & 0x3f);
      } else {
        code = 0x10000 + ((code - 0xd800) << 10) + (value.charCodeAt(++index) - 0xdc00);
        bytes[pos++] = 0xf0 | (code >> 18);
        bytes[pos++] = 0x80 | ((code >> 12) & 0x3f);
        bytes[pos++] = 0x80 | ((code >> 6) & 0x3f);
        bytes[pos++] = 0x80 | (code & 0x3f);
      }
    }
    this.pos = pos;
  }

  private binary(value: Uint8Array): void {
    const length = value.byteLength;
    if (length < 0x100) {
      this.ensure(2 + length);
      this.bytes[this.pos++] = 0xc4;
      this.bytes[this.pos++] = length;
    } else if (length < 0x1_0000) {
      this.ensure(3 + length);
      this.bytes[this.pos] = 0xc5;
      this.view.setUint16(this.pos + 1, length);
      this.pos += 3;
    } else if (length < TWO_32) {
      const splice = this.splicing && length >= SPLICE_MIN_SIZE;
      this.ensure(splice ? 5 : 5 + length);
      this.bytes[this.pos] = 0xc6;
      this.view.setUint32(this.pos + 1, length);
      this.pos += 5;
      if (splice) {
        // Written from where it is, after the header: see encodeParts.
        this.spliced.push(value);
        this.splicedAt.push(this.pos);
        return;
      }
    } else {
      throw new Unencodable(`binary of ${length} bytes is larger than bin 32 allows`);
    }
    this.bytes.set(value, this.pos);
    this.pos += length;
  }

  private array(value: unknown[], depth: number): void {
    const length = value.length;
    this.header(length, 0x90, 0xdc);
    for (let index = 0; index < length; index++) {
      const item = value[index];
      if (item === undefined) throw new Unencodable("undefined inside an array");
      this.write(item, depth + 1);
    }
  }

  private map(value: Record<string, unknown>, depth: number): void {
    const keys = Object.keys(value);
    let size = 0;
    for (let index = 0; index < keys.length; index++) {
      // Undefined members are omitted (values.ts explains why).
      if (value[keys[index] as string] !== undefined) size++;
    }
    this.header(size, 0x80, 0xde);
    for (let index = 0; index < keys.length; index++) {
      const key = keys[index] as string;
      const item = value[key];
      if (item === undefined) continue;
      this.string(key);
      this.write(item, depth + 1);
    }
  }

  /**
   * The header of a str (fix 0xa0, 8-bit form 0xd9), array (0x90, 0xdc) or map (0x80, 0xde):
   * the fix form when the size fits in it, else the 8-bit (str only), 16-bit or 32-bit form.
   */
  private header(size: number, fix: number, sized: number): void {
    this.ensure(5);
    const pos = this.pos;
    const fixLimit = fix === 0xa0 ? 32 : 16;
    if (size < fixLimit) {
      this.bytes[pos] = fix | size;
      this.pos = pos + 1;
    } else if (fix === 0xa0 && size < 0x100) {
      this.bytes[pos] = sized;
      this.bytes[pos + 1] = size;
      this.pos = pos + 2;
    } else if (size < 0x1_0000) {
      this.bytes[pos] = fix === 0xa0 ? sized + 1 : sized;
      this.view.setUint16(pos + 1, size);
      this.pos = pos + 3;
    } else if (size < TWO_32) {
      this.bytes[pos] = fix === 0xa0 ? sized + 2 : sized + 1;
      this.view.setUint32(pos + 1, size);
      this.pos = pos + 5;
    } else {
      throw new Unencodable(`a size of ${size} is larger than MessagePack allows`);
    }
  }
}
