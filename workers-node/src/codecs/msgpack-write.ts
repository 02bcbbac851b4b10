/**
 * The MessagePack forms (PROTOCOL.md 3.2), written one at a time into a growing buffer: the bytes
 * of an integer, a float, a string, a header. Pure code; the walk over a value that decides what
 * to write is msgpack-encode.ts.
 *
 * Bytes go into a scratch buffer that is reused from one message to the next and copied out at
 * the end (one short copy for a typical message); a message that outgrows the scratch buffer gets
 * a buffer of its own, sized for it, which is handed out as it is. So a large binary value is
 * copied once, from the caller's Uint8Array into the message, and `room` bytes can be left free
 * in front for the frame header, which the framing then writes in place instead of copying the
 * payload again.
 *
 * A buffer grown for a large message is reused for the next large one once its frame was written
 * (`release`): fresh memory of that size costs the kernel a page fault per 4 KiB on first touch,
 * a third of a 16 MiB echo. At most one such spare buffer is kept.
 *
 * Integers take the shortest form; an integer beyond 32 bits can only be int 64 / uint 64, for a
 * `number` and a `bigint` alike. A non-integral or unsafe `number` (NaN, ±Infinity, 2^53) is
 * float 64, and so is `-0` (decision D9: -0.0 is a float, whose sign the receiver keeps).
 */

const SCRATCH_SIZE = 16 * 1024;
/** Grown buffers at least this large are kept for reuse once released. */
const SPARE_MIN_SIZE = 256 * 1024;
/** Strings up to this many UTF-16 units are measured and written in JavaScript; longer ones natively. */
const SHORT_STRING = 32;
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;
export const TWO_32 = 0x1_0000_0000;

/** Thrown inside the walk when a value has no MessagePack form; `prepareValue` says why. */
export class Unencodable extends Error {}

/**
 * Writes MessagePack forms at `pos`, growing its buffer as needed; what it wrote is taken out
 * with {@link take}. Subclassed by the encoder, so that the walk reaches the bytes without a call.
 */
export class MessagePackWriter {
  protected readonly scratch = Buffer.allocUnsafeSlow(SCRATCH_SIZE);
  protected bytes: Buffer = this.scratch;
  protected view: DataView = new DataView(this.scratch.buffer, this.scratch.byteOffset, this.scratch.byteLength);
  protected pos = 0;
  /** A released grown buffer, reused before allocating a new one. */
  private spare: Buffer | null = null;
  /** Grown buffers handed out in results, which `release` may take back. */
  private readonly handedOut = new WeakMap<ArrayBufferLike, Buffer>();

  /**
   * Says that `encoded`, a result of the encoder's `encode`, is no longer read by anyone (its frame was
   * written): its memory may be reused for a later message. Anything else is ignored.
   */
  release(encoded: Uint8Array): void {
    const buffer = this.handedOut.get(encoded.buffer);
    if (buffer === undefined) return;
    this.handedOut.delete(encoded.buffer);
    if (this.spare === null || this.spare.byteLength < buffer.byteLength) this.spare = buffer;
  }

  /** The bytes written so far, as the message's own memory; writing starts over in the scratch buffer. */
  protected take(): Uint8Array {
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
    return own;
  }

  protected use(buffer: Buffer): void {
    if (this.bytes === buffer) return;
    this.bytes = buffer;
    this.view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  /** Makes room for `count` more bytes, moving to a larger buffer (at least twice as large) if needed. */
  protected ensure(count: number): void {
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

  protected integer(value: number): void {
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

  protected float(value: number): void {
    this.ensure(9);
    this.bytes[this.pos] = 0xcb;
    this.view.setFloat64(this.pos + 1, value);
    this.pos += 9;
  }

  protected bigint(value: bigint): void {
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

  protected string(value: string): void {
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

  /**
   * The header of a str (fix 0xa0, 8-bit form 0xd9), array (0x90, 0xdc) or map (0x80, 0xde):
   * the fix form when the size fits in it, else the 8-bit (str only), 16-bit or 32-bit form.
   */
  protected header(size: number, fix: number, sized: number): void {
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
