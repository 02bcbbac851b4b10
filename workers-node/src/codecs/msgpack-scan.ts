/**
 * A structural check of MessagePack bytes, run before the library decodes them.
 *
 * It enforces what PROTOCOL.md section 3.2 adds to MessagePack and what the library does not:
 * exactly one object per payload, no ext types (the library turns type -1 into a `Date` and others
 * into `ExtData`), string map keys only, valid UTF-8 in every str, a nesting limit, and every
 * declared length fitting in the bytes actually present, so that a header declaring 4 GiB fails
 * here without anything being allocated for it. It allocates nothing but a small stack.
 */
import { isUtf8 } from "node:buffer";

import { MAX_NESTING_DEPTH } from "../constants.js";

/** What the scan learned that the decoder needs to know. */
export interface ScanResult {
  /** True if some integer was written as int 64 / uint 64 (the decoder must turn safe ones back into numbers). */
  readonly has64BitIntegers: boolean;
}

/** Thrown by {@link scanMessagePack}; the codec wraps it into a CodecError. */
export class ScanError extends Error {}

interface Container {
  /** Items still to read; a map of n entries holds 2n items, keys at even counts. */
  remaining: number;
  readonly isMap: boolean;
}

/**
 * Checks that `bytes` hold exactly one object of the aspect-ipc mapping.
 * @throws {ScanError} describing the first problem and its offset.
 */
export function scanMessagePack(bytes: Uint8Array): ScanResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.byteLength;
  const stack: Container[] = [];
  let pos = 0;
  let has64BitIntegers = false;

  if (end === 0) throw new ScanError("empty payload: no MessagePack object");

  const need = (count: number, what: string): void => {
    if (end - pos < count) {
      throw new ScanError(`truncated ${what} at offset ${pos}: ${count} more bytes declared, ${end - pos} present`);
    }
  };

  do {
    const top = stack[stack.length - 1];
    const isKey = top !== undefined && top.isMap && top.remaining % 2 === 0;
    need(1, "object");
    const start = pos;
    const head = bytes[pos++] as number;
    let str = -1; // byte length of a str, when the item is one
    let container: Container | null = null;

    if (head <= 0x7f || head >= 0xe0 || head === 0xc0 || head === 0xc2 || head === 0xc3) {
      // fixint, nil, false, true: nothing follows
    } else if (head >= 0xa0 && head <= 0xbf) {
      str = head & 0x1f;
    } else if (head >= 0x80 && head <= 0x8f) {
      container = { remaining: (head & 0x0f) * 2, isMap: true };
    } else if (head >= 0x90 && head <= 0x9f) {
      container = { remaining: head & 0x0f, isMap: false };
    } else {
      switch (head) {
        case 0xc1:
          throw new ScanError(`byte 0xc1 at offset ${start} is never used in MessagePack`);
        case 0xc4:
        case 0xc5:
        case 0xc6: {
          const size = readLength(head - 0xc4);
          need(size, "bin");
          pos += size;
          break;
        }
        case 0xc7:
        case 0xc8:
        case 0xc9:
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8:
          throw new ScanError(
            `ext type at offset ${start} (head byte 0x${head.toString(16)}): ext types, including timestamps, are not part of the aspect-ipc mapping`,
          );
        case 0xca:
        case 0xd2:
        case 0xce:
          need(4, "number");
          pos += 4;
          break;
        case 0xcb:
          need(8, "float 64");
          pos += 8;
          break;
        case 0xcf:
        case 0xd3:
          need(8, "int 64");
          pos += 8;
          has64BitIntegers = true;
          break;
        case 0xcc:
        case 0xd0:
          need(1, "number");
          pos += 1;
          break;
        case 0xcd:
        case 0xd1:
          need(2, "number");
          pos += 2;
          break;
        case 0xd9:
        case 0xda:
        case 0xdb:
          str = readLength(head - 0xd9);
          break;
        case 0xdc:
        case 0xdd: {
          const count = readLength(head - 0xdc + 1);
          container = { remaining: count, isMap: false };
          break;
        }
        case 0xde:
        case 0xdf: {
          const count = readLength(head - 0xde + 1);
          container = { remaining: count * 2, isMap: true };
          break;
        }
        default:
          throw new ScanError(`unknown head byte 0x${head.toString(16)} at offset ${start}`);
      }
    }

    if (isKey && str < 0) {
      throw new ScanError(`map key at offset ${start} is not a string (head byte 0x${head.toString(16)}): map keys must be strings`);
    }
    if (str >= 0) {
      need(str, "str");
      if (!isUtf8(bytes.subarray(pos, pos + str))) {
        throw new ScanError(`str at offset ${start} is not valid UTF-8`);
      }
      pos += str;
    }

    if (container !== null && container.remaining > 0) {
      // Every item takes at least one byte: a count larger than what is left is a lie, caught
      // before the decoder would size anything by it.
      need(container.remaining, container.isMap ? "map" : "array");
      if (stack.length >= MAX_NESTING_DEPTH) {
        throw new ScanError(`nesting deeper than ${MAX_NESTING_DEPTH} levels at offset ${start}`);
      }
      stack.push(container);
      continue;
    }

    // A complete item: count it against its containers, closing those it completes.
    let parent = stack[stack.length - 1];
    while (parent !== undefined) {
      parent.remaining -= 1;
      if (parent.remaining > 0) break;
      stack.pop();
      parent = stack[stack.length - 1];
    }
  } while (stack.length > 0);

  if (pos !== end) {
    throw new ScanError(`trailing bytes: one object ends at offset ${pos}, the payload has ${end} bytes`);
  }
  return { has64BitIntegers };

  /** Reads a 1-, 2- or 4-byte big-endian length (width index 0, 1, 2). */
  function readLength(width: number): number {
    const size = 1 << width;
    need(size, "length");
    const value = size === 1 ? view.getUint8(pos) : size === 2 ? view.getUint16(pos) : view.getUint32(pos);
    pos += size;
    return value;
  }
}
