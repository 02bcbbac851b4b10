/**
 * MessagePack encoding with the aspect-ipc mapping (PROTOCOL.md 3.2). Pure code: values in, bytes out.
 *
 * Theory of operation. One walk over the value both checks it and writes it; the bytes of each
 * form, and the buffers they go into, are msgpack-write.ts.
 *
 * For a frame (`encodeParts`), a binary of SPLICE_MIN_SIZE bytes or more is not copied at all: its
 * header is written, and the caller's Uint8Array itself is returned as a part of the frame, to be
 * written from where it is (a writev of the parts). What is copied is then the message around it.
 *
 * The walk enforces exactly what `prepareValue` (values.ts) enforces, but without keeping track of
 * where it is: when something is unencodable, the value is walked again by `prepareValue`, which
 * raises the CodecError naming the type and its path. The fast walk never has to build a message.
 *
 * An encode hook (types.ts) is called where the walk meets a value it cannot carry; the replacement
 * is written in its place. Each call's outcome is recorded for the slow walk, which replays them
 * rather than calling the hook again, so that it fails where the fast walk failed.
 */
import { MAX_NESTING_DEPTH } from "../constants.js";
import { CodecError, describeError } from "../errors.js";
import { MessagePackWriter, TWO_32, Unencodable } from "./msgpack-write.js";
import type { EncodeHook } from "./types.js";
import { MAX_HOOK_APPLICATIONS, prepareValue, type HookOutcome, type ValuePolicy } from "./values.js";

/** The MessagePack policy of `prepareValue`, used to explain a refusal. */
export const MSGPACK_POLICY: ValuePolicy = { codec: "MessagePack", codecClass: "MessagePackCodec", binary: true, nonFinite: true, integers: "msgpack" };

/**
 * Binaries this large or larger are spliced into a frame (written from the caller's memory) rather
 * than copied into it: below this, one copy costs less than one more buffer to write.
 */
export const SPLICE_MIN_SIZE = 64 * 1024;

/** Encodes values; one per channel (it keeps a scratch buffer). Not reentrant. */
export class MessagePackEncoder extends MessagePackWriter {
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

  constructor(private readonly encodeHook?: EncodeHook) {
    super();
  }

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
    const own = this.take();
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

  /** Here rather than with the other forms (msgpack-write.ts): it decides which binaries are spliced. */
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
}
