/**
 * Length-prefixed framing for the data channel (PROTOCOL.md section 2): a 4-byte big-endian length
 * N, then exactly N bytes of payload.
 *
 * Theory of operation: the decoder is a two-state machine, HEADER (collecting up to 4 bytes) and
 * PAYLOAD (collecting N bytes). The header is checked in full before anything is done for the
 * payload, so a header over the limit costs nothing. A payload inside a single chunk is not copied
 * at all: the frame is a view of the chunk (so is one that fills the next chunk exactly). A payload
 * that spans chunks is received straight into one buffer of its exact size, each chunk copied into
 * it as it arrives, so that a frame costs its size once, not twice (pieces kept, then joined).
 *
 * What a header declares is not reserved on trust, though (a peer can declare 4 GiB in 4 bytes): a
 * payload of up to EXACT_RESERVE bytes gets its buffer with its first bytes, a larger one only once
 * 1/RESERVE_RATIO of it has arrived. Until then its pieces are kept as views of the chunks they
 * came in (small ones copied into blocks), then copied once into the buffer. So a peer can make us
 * hold at most EXACT_RESERVE bytes or RESERVE_RATIO times what it actually sent, and a large frame
 * is copied 1 + 1/RESERVE_RATIO times. Every error here is fatal: the stream cannot be
 * resynchronized, so the decoder moves to FAILED and ignores the rest.
 */
import { DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT } from "../constants.js";
import { FramingError } from "../errors.js";
import type { FrameDecoder, FrameEvent, Framing } from "./types.js";

const HEADER_SIZE = 4;
/**
 * Payload pieces smaller than this are copied into blocks rather than kept as views: a peer
 * writing one byte at a time must not make us hold a view object per byte. Blocks start at this
 * size and double up to BLOCK_SIZE, so that they stay within twice what actually arrived.
 */
const SMALL_PIECE = 4096;
const BLOCK_SIZE = 64 * 1024;
/** A payload of up to this many bytes gets its buffer as soon as its header is read. */
const EXACT_RESERVE = 4 * 1024 * 1024;
/** A larger payload gets its buffer once this fraction (1/RESERVE_RATIO) of it has arrived. */
const RESERVE_RATIO = 16;

/** Options of {@link LengthPrefixedFraming}. */
export interface LengthPrefixedFramingOptions {
  /** Largest payload accepted and sent, in bytes: 1 to 2^32 - 1, default 64 MiB. */
  maxFrameSize?: number | undefined;
}

/** The data channel's framing: 4-byte big-endian length + payload. */
export class LengthPrefixedFraming implements Framing {
  /** Largest payload accepted and sent, in bytes. */
  readonly maxFrameSize: number;

  constructor(options: LengthPrefixedFramingOptions = {}) {
    const max = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    if (!Number.isInteger(max) || max < 1 || max > MAX_FRAME_SIZE_LIMIT) {
      throw new RangeError(`maxFrameSize must be an integer from 1 to ${MAX_FRAME_SIZE_LIMIT}, got ${max}`);
    }
    this.maxFrameSize = max;
  }

  get maxPayloadSize(): number {
    return this.maxFrameSize;
  }

  createDecoder(): FrameDecoder {
    return new LengthPrefixedDecoder(this.maxFrameSize);
  }

  encode(payload: Uint8Array): Uint8Array {
    this.checkPayload(payload.byteLength);
    const buffer = Buffer.allocUnsafe(HEADER_SIZE + payload.byteLength);
    buffer.writeUInt32BE(payload.byteLength, 0);
    buffer.set(payload, HEADER_SIZE);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  /** @internal */
  get headerSize(): number {
    return HEADER_SIZE;
  }

  /** @internal */
  encodeInPlace(room: Uint8Array, frameSize = room.byteLength): Uint8Array {
    const size = frameSize - HEADER_SIZE;
    this.checkPayload(size);
    room[0] = size >>> 24;
    room[1] = (size >>> 16) & 0xff;
    room[2] = (size >>> 8) & 0xff;
    room[3] = size & 0xff;
    return room;
  }

  private checkPayload(size: number): void {
    if (size <= 0) {
      throw new FramingError("empty_frame", "cannot send an empty frame: a frame needs at least one byte of payload");
    }
    if (size > this.maxFrameSize) {
      const error = tooLarge(size, this.maxFrameSize);
      throw new FramingError("frame_too_large", `${error.message}: raise max_frame_size or split the payload`, { size, limit: this.maxFrameSize });
    }
  }
}

/** The error for a frame of `size` bytes against a limit of `limit`; its message is the `-32005` one (D17). */
export function tooLarge(size: number, limit: number): FramingError {
  return new FramingError("frame_too_large", `frame of ${size} bytes exceeds max_frame_size of ${limit} bytes`, { size, limit });
}

class LengthPrefixedDecoder implements FrameDecoder {
  private readonly header = new Uint8Array(HEADER_SIZE);
  private headerFill = 0;
  /** The current payload's own buffer, once reserved: the chunks are copied into it as they come. */
  private target: Uint8Array | null = null;
  /** Until then, its pieces (views of pushed chunks); the bytes received, the payload's size. */
  private pieces: Uint8Array[] = [];
  private payloadFill = 0;
  private payloadSize = 0;
  /** Where small pieces are gathered (see SMALL_PIECE), and how much of it is used. */
  private block: Uint8Array | null = null;
  private blockFill = 0;
  private nextBlockSize = SMALL_PIECE;
  private state: "header" | "payload" | "failed" = "header";

  /** A tighter limit for the first frame only (the pre-`$/hello` limit, D14), or null. */
  private firstFrameLimit: number | null = null;

  constructor(private readonly maxFrameSize: number) {}

  /** @internal */
  limitFirstFrame(limit: number): void {
    this.firstFrameLimit = Math.min(limit, this.maxFrameSize);
  }

  get failed(): boolean {
    return this.state === "failed";
  }

  push(chunk: Uint8Array): FrameEvent[] {
    const events: FrameEvent[] = [];
    let offset = 0;
    while (offset < chunk.byteLength && this.state !== "failed") {
      if (this.state === "header") {
        // Fast path: a whole header and a whole payload inside this chunk need no copy.
        if (this.headerFill === 0 && chunk.byteLength - offset >= HEADER_SIZE) {
          const size = readUint32(chunk, offset);
          const error = this.checkSize(size);
          if (error) return [...events, this.fail(error)];
          offset += HEADER_SIZE;
          if (chunk.byteLength - offset >= size) {
            events.push({ type: "frame", frame: chunk.subarray(offset, offset + size) });
            offset += size;
          } else {
            this.startPayload(size);
          }
          continue;
        }
        const take = Math.min(HEADER_SIZE - this.headerFill, chunk.byteLength - offset);
        this.header.set(chunk.subarray(offset, offset + take), this.headerFill);
        this.headerFill += take;
        offset += take;
        if (this.headerFill === HEADER_SIZE) {
          this.headerFill = 0;
          const size = readUint32(this.header, 0);
          const error = this.checkSize(size);
          if (error) return [...events, this.fail(error)];
          this.startPayload(size);
        }
      } else {
        const take = Math.min(this.payloadSize - this.payloadFill, chunk.byteLength - offset);
        this.addPiece(chunk.subarray(offset, offset + take));
        this.payloadFill += take;
        offset += take;
        if (this.payloadFill === this.payloadSize) {
          events.push({ type: "frame", frame: this.joinPieces() });
          this.state = "header";
        }
      }
    }
    return events;
  }

  end(): FrameEvent[] {
    if (this.state === "failed") return [];
    const inside = this.state === "payload" || this.headerFill > 0;
    if (!inside) return [];
    const where = this.state === "payload" ? "a payload" : "a frame header";
    return [this.fail(new FramingError("truncated", `data channel stream ended inside ${where}`))];
  }

  private checkSize(size: number): FramingError | null {
    const limit = this.firstFrameLimit ?? this.maxFrameSize;
    this.firstFrameLimit = null;
    if (size === 0) {
      return new FramingError("empty_frame", "received a frame with length 0 (empty frames are invalid)");
    }
    if (size > limit) return tooLarge(size, limit);
    return null;
  }

  private startPayload(size: number): void {
    this.pieces = [];
    this.nextBlockSize = SMALL_PIECE;
    this.payloadFill = 0;
    this.payloadSize = size;
    this.state = "payload";
  }

  /** Takes the next `piece` of the payload; `payloadFill` does not count it yet. */
  private addPiece(piece: Uint8Array): void {
    if (this.target === null) {
      if (this.payloadFill === 0 && piece.byteLength === this.payloadSize) {
        this.pieces.push(piece); // the whole payload in one chunk: a view of it, no copy
        return;
      }
      if (this.payloadSize <= EXACT_RESERVE) this.target = payloadBuffer(this.payloadSize);
    }
    if (this.target !== null) {
      this.target.set(piece, this.payloadFill);
      return;
    }
    if (piece.byteLength >= SMALL_PIECE) {
      this.closeBlock();
      this.pieces.push(piece);
    } else {
      if (this.block === null || this.block.byteLength - this.blockFill < piece.byteLength) {
        this.closeBlock();
        // What is left of the payload includes `piece`.
        this.block = new Uint8Array(Math.min(this.nextBlockSize, this.payloadSize - this.payloadFill));
        this.nextBlockSize = Math.min(this.nextBlockSize * 2, BLOCK_SIZE);
      }
      this.block.set(piece, this.blockFill);
      this.blockFill += piece.byteLength;
    }
    if ((this.payloadFill + piece.byteLength) * RESERVE_RATIO >= this.payloadSize) this.reserve();
  }

  /** Enough of a large payload has arrived: its buffer, with the pieces so far copied in. */
  private reserve(): void {
    this.closeBlock();
    const target = payloadBuffer(this.payloadSize);
    let at = 0;
    for (const piece of this.pieces) {
      target.set(piece, at);
      at += piece.byteLength;
    }
    this.pieces = [];
    this.target = target;
  }

  private closeBlock(): void {
    if (this.block !== null && this.blockFill > 0) this.pieces.push(this.block.subarray(0, this.blockFill));
    this.block = null;
    this.blockFill = 0;
  }

  /** The complete payload: its buffer, or its only piece as it is. */
  private joinPieces(): Uint8Array {
    if (this.target === null) {
      this.closeBlock();
      const pieces = this.pieces;
      if (pieces.length === 1) {
        this.pieces = [];
        return pieces[0] as Uint8Array;
      }
      this.reserve();
    }
    const payload = this.target as Uint8Array;
    this.target = null;
    return payload;
  }

  private fail(error: FramingError): FrameEvent {
    this.state = "failed";
    this.pieces = [];
    this.block = null;
    this.target = null;
    return { type: "error", error };
  }
}

/**
 * A payload's own buffer: not zero-filled (every byte is written before it is handed out), and not
 * from Node's shared pool: binary values decoded from the frame are views of it, and must not
 * reach other buffers' memory.
 */
function payloadBuffer(size: number): Uint8Array {
  return new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size);
}

function readUint32(bytes: Uint8Array, offset: number): number {
  return (
    ((bytes[offset] as number) * 0x100_0000 +
      ((bytes[offset + 1] as number) << 16) +
      ((bytes[offset + 2] as number) << 8) +
      (bytes[offset + 3] as number)) >>> 0
  );
}
