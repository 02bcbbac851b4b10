/**
 * Recovering the id of a frame that failed to decode (PROTOCOL.md 4.8, decision D10). Pure code.
 *
 * When a frame is readable MessagePack but breaks the aspect-ipc mapping somewhere (an ext type in
 * the params, a non-string key, invalid UTF-8, nesting too deep), the sender still deserves an
 * answer with its request's id. This walks the top-level map without building anything: `id` and
 * `method` are read when they are a str or an int, every other item is skipped by its declared
 * size, with an explicit count of items still to skip instead of recursion, so depth costs no
 * stack. Anything unreadable (truncated, a never-used byte) means no id.
 *
 * An answer that breaks the mapping (PROTOCOL.md 4.8) is recovered by the same walk: whether the
 * map has a `method` member and a `result` or `error` member is noted (their values skipped, not
 * read), and the receiver fails the pending request its id names instead of letting it time out.
 */

/** The ids recovered from a frame: a request's (answered `-32700`) or an answer's. */
export interface RecoveredIds {
  /** The id of a top-level map with a string `method` and a str/int `id`. */
  readonly requestId: string | number | bigint | undefined;
  /** The id of a top-level map without `method`, with `result` or `error`, and a str/int `id`. */
  readonly answerId: string | number | bigint | undefined;
}

const NONE: RecoveredIds = { requestId: undefined, answerId: undefined };

/** The request's or the answer's id, as {@link RecoveredIds} says; both undefined when the frame is unreadable. */
export function recoverMessagePackIds(bytes: Uint8Array): RecoveredIds {
  try {
    return new Skipper(bytes).topLevel();
  } catch {
    return NONE;
  }
}

// ignoreBOM: a leading U+FEFF is data, as in the decoder.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Thrown when the bytes end early or hold a never-used byte. */
class Unreadable extends Error {}

class Skipper {
  private pos = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  topLevel(): RecoveredIds {
    const head = this.byte();
    let count: number;
    if (head >= 0x80 && head <= 0x8f) count = head & 0x0f;
    else if (head === 0xde) count = this.uint(2);
    else if (head === 0xdf) count = this.uint(4);
    else return NONE;
    let id: string | number | bigint | undefined;
    let method = false;
    let hasMethod = false;
    let hasAnswer = false;
    for (let index = 0; index < count; index++) {
      const key = this.scalar();
      if (key === "id") {
        const value = this.scalar();
        id = typeof value === "string" || typeof value === "number" || typeof value === "bigint" ? value : undefined;
      } else if (key === "method") {
        method = typeof this.scalar() === "string";
        hasMethod = true;
      } else {
        if (key === "result" || key === "error") hasAnswer = true;
        this.skip(1);
      }
    }
    return { requestId: method ? id : undefined, answerId: !hasMethod && hasAnswer ? id : undefined };
  }

  /**
   * Reads one item: a str (valid UTF-8) or an int is returned, anything else is skipped and
   * returns null (a float too: a float is never an id).
   */
  private scalar(): string | number | bigint | null {
    const head = this.bytes[this.pos];
    if (head === undefined) throw new Unreadable();
    if (head <= 0x7f) return this.byte();
    if (head >= 0xe0) return this.byte() - 0x100;
    const stringSize = head >= 0xa0 && head <= 0xbf ? 1 : head >= 0xd9 && head <= 0xdb ? 2 + (head - 0xd9) : 0;
    if (stringSize > 0) {
      this.pos++;
      const size = head <= 0xbf ? head & 0x1f : this.uint(1 << (head - 0xd9));
      const text = this.take(size);
      try {
        return utf8.decode(text);
      } catch {
        return null;
      }
    }
    if (head >= 0xcc && head <= 0xd3) {
      this.pos++;
      const width = 1 << ((head - 0xcc) % 4);
      const signed = head >= 0xd0;
      const bytes = this.take(width);
      const view = new DataView(bytes.buffer, bytes.byteOffset, width);
      if (width === 8) {
        const big = signed ? view.getBigInt64(0) : view.getBigUint64(0);
        return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
      }
      if (width === 1) return signed ? view.getInt8(0) : view.getUint8(0);
      if (width === 2) return signed ? view.getInt16(0) : view.getUint16(0);
      return signed ? view.getInt32(0) : view.getUint32(0);
    }
    this.skip(1);
    return null;
  }

  /** Skips `count` complete items, without recursion. */
  private skip(count: number): void {
    let left = count;
    while (left > 0) {
      left--;
      const head = this.byte();
      if (head <= 0x7f || head >= 0xe0 || head === 0xc0 || head === 0xc2 || head === 0xc3) continue;
      if (head >= 0xa0 && head <= 0xbf) this.take(head & 0x1f);
      else if (head >= 0x90 && head <= 0x9f) left += head & 0x0f;
      else if (head >= 0x80 && head <= 0x8f) left += 2 * (head & 0x0f);
      else if (head === 0xc4 || head === 0xd9) this.take(this.uint(1));
      else if (head === 0xc5 || head === 0xda) this.take(this.uint(2));
      else if (head === 0xc6 || head === 0xdb) this.take(this.uint(4));
      else if (head === 0xdc) left += this.uint(2);
      else if (head === 0xdd) left += this.uint(4);
      else if (head === 0xde) left += 2 * this.uint(2);
      else if (head === 0xdf) left += 2 * this.uint(4);
      else if (head === 0xc7) this.take(1 + this.uint(1));
      else if (head === 0xc8) this.take(1 + this.uint(2));
      else if (head === 0xc9) this.take(1 + this.uint(4));
      else if (head >= 0xd4 && head <= 0xd8) this.take(1 + (1 << (head - 0xd4)));
      else if (head === 0xca) this.take(4);
      else if (head === 0xcb) this.take(8);
      else if (head >= 0xcc && head <= 0xd3) this.take(1 << ((head - 0xcc) % 4));
      else throw new Unreadable(); // 0xc1
      // Every item is at least one byte: more items than bytes left is a lie.
      if (left > this.bytes.byteLength - this.pos) throw new Unreadable();
    }
  }

  private byte(): number {
    const value = this.bytes[this.pos];
    if (value === undefined) throw new Unreadable();
    this.pos++;
    return value;
  }

  private uint(width: number): number {
    const bytes = this.take(width);
    if (width === 1) return bytes[0] as number;
    if (width === 2) return this.view.getUint16(this.pos - 2);
    return this.view.getUint32(this.pos - 4);
  }

  private take(size: number): Uint8Array {
    if (this.bytes.byteLength - this.pos < size) throw new Unreadable();
    this.pos += size;
    return this.bytes.subarray(this.pos - size, this.pos);
  }
}
