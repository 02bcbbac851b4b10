/**
 * Where in a message an item of a MessagePack frame sits, as a path (`$.params.rows[3]`), for the
 * error of a decode hook that failed on the map at a given offset: the same words as the JSON
 * codec's and the other SDKs' (`decode hook failed on the map at $.params`). Pure code.
 *
 * Only called once a hook failed, never on the way of a message that decodes: the frame is walked
 * again from its start, down the containers that hold the offset, skipping every other item by
 * its declared size. Everything before the failed map was decoded already, so it is readable.
 */
import { formatPath } from "./values.js";

const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/** The path of the item that starts at `offset` in `bytes`; `$` if it cannot be told. */
export function messagePackPath(bytes: Uint8Array, offset: number): string {
  try {
    const path = new PathFinder(bytes, offset).find();
    return path === null ? "$" : formatPath(path);
  } catch {
    return "$";
  }
}

class PathFinder {
  private pos = 0;
  private readonly view: DataView;
  private readonly path: Array<string | number> = [];

  constructor(
    private readonly bytes: Uint8Array,
    private readonly target: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** The path to the target, or null if no item starts there. */
  find(): Array<string | number> | null {
    return this.visit() ? this.path : null;
  }

  /** Reads the item at `pos`; true (with `path` leading to it) once the target is reached. */
  private visit(): boolean {
    if (this.pos === this.target) return true;
    if (this.pos > this.target) return false;
    const head = this.byte();
    let count = -1;
    let map = false;
    if (head >= 0x80 && head <= 0x8f) [count, map] = [head & 0x0f, true];
    else if (head >= 0x90 && head <= 0x9f) count = head & 0x0f;
    else if (head === 0xdc || head === 0xdd) count = this.uint(head === 0xdc ? 2 : 4);
    else if (head === 0xde || head === 0xdf) [count, map] = [this.uint(head === 0xde ? 2 : 4), true];
    if (count < 0) {
      this.skipScalar(head);
      return false;
    }
    for (let index = 0; index < count; index++) {
      this.path.push(map ? this.key() : index);
      if (this.visit()) return true;
      this.path.pop();
      if (this.pos > this.target) return false;
    }
    return false;
  }

  /** A map key (a str: the map was decoded before, so its keys are strings). */
  private key(): string {
    const head = this.byte();
    const size = head >= 0xa0 && head <= 0xbf ? head & 0x1f : this.uint(head === 0xd9 ? 1 : head === 0xda ? 2 : 4);
    const text = utf8.decode(this.bytes.subarray(this.pos, this.pos + size));
    this.pos += size;
    return text;
  }

  /** Skips a scalar (not an array, not a map) whose head byte was read. */
  private skipScalar(head: number): void {
    if (head <= 0x7f || head >= 0xe0 || head === 0xc0 || head === 0xc2 || head === 0xc3) return;
    const size = this.scalarSize(head); // reads the length first: `pos` moves past it
    this.pos += size;
  }

  /** The size of a scalar's data after its head byte (and after its length, read here). */
  private scalarSize(head: number): number {
    if (head >= 0xa0 && head <= 0xbf) return head & 0x1f;
    if (head === 0xc4 || head === 0xd9) return this.uint(1);
    if (head === 0xc5 || head === 0xda) return this.uint(2);
    if (head === 0xc6 || head === 0xdb) return this.uint(4);
    if (head === 0xcc || head === 0xd0) return 1;
    if (head === 0xcd || head === 0xd1) return 2;
    if (head === 0xca || head === 0xce || head === 0xd2) return 4;
    if (head === 0xcb || head === 0xcf || head === 0xd3) return 8;
    throw new Error(`unexpected head byte 0x${head.toString(16)}`);
  }

  private byte(): number {
    if (this.pos >= this.bytes.byteLength) throw new Error("truncated");
    return this.bytes[this.pos++] as number;
  }

  private uint(size: number): number {
    if (this.pos + size > this.bytes.byteLength) throw new Error("truncated");
    const at = this.pos;
    this.pos += size;
    return size === 1 ? (this.bytes[at] as number) : size === 2 ? this.view.getUint16(at) : this.view.getUint32(at);
  }
}
