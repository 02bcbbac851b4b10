/**
 * Length-prefixed framing for the data channel (PROTOCOL.md section 2): a 4-byte big-endian length
 * N, then exactly N bytes of payload.
 *
 * Theory of operation: the decoder is a two-state machine, HEADER (collecting up to 4 bytes) and
 * PAYLOAD (filling a buffer of exactly N bytes). The header is checked in full before anything is
 * allocated for the payload, so a hostile `ffffffff` costs nothing. Every error here is fatal: the
 * stream cannot be resynchronized, so the decoder moves to FAILED and ignores the rest.
 */
import { DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT, formatSize } from "../constants.js";
import { FramingError } from "../errors.js";
import type { FrameDecoder, FrameEvent, Framing } from "./types.js";

const HEADER_SIZE = 4;

/** Options of {@link LengthPrefixedFraming}. */
export interface LengthPrefixedFramingOptions {
  /** Largest payload accepted and sent, in bytes: 1 to 2^32 - 1, default 64 MiB. */
  maxFrameSize?: number;
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
    if (payload.byteLength === 0) {
      throw new FramingError("empty_frame", "cannot send an empty frame: a frame needs at least one byte of payload");
    }
    if (payload.byteLength > this.maxFrameSize) {
      throw tooLarge(payload.byteLength, this.maxFrameSize);
    }
    const frame = new Uint8Array(HEADER_SIZE + payload.byteLength);
    new DataView(frame.buffer).setUint32(0, payload.byteLength, false);
    frame.set(payload, HEADER_SIZE);
    return frame;
  }
}

/** The error for a frame of `size` bytes against a limit of `limit`. */
export function tooLarge(size: number, limit: number): FramingError {
  return new FramingError(
    "frame_too_large",
    `data channel frame of ${formatSize(size)} exceeds max_frame_size (${formatSize(limit)}); ` +
      "raise max_frame_size or split the payload",
  );
}

class LengthPrefixedDecoder implements FrameDecoder {
  private readonly header = new Uint8Array(HEADER_SIZE);
  private headerFill = 0;
  private payload: Uint8Array | null = null;
  private payloadFill = 0;
  private state: "header" | "payload" | "failed" = "header";

  constructor(private readonly maxFrameSize: number) {}

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
        const payload = this.payload as Uint8Array;
        const take = Math.min(payload.byteLength - this.payloadFill, chunk.byteLength - offset);
        payload.set(chunk.subarray(offset, offset + take), this.payloadFill);
        this.payloadFill += take;
        offset += take;
        if (this.payloadFill === payload.byteLength) {
          events.push({ type: "frame", frame: payload });
          this.payload = null;
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
    if (size === 0) {
      return new FramingError("empty_frame", "received a frame with length 0 (empty frames are invalid)");
    }
    if (size > this.maxFrameSize) return tooLarge(size, this.maxFrameSize);
    return null;
  }

  private startPayload(size: number): void {
    // Only now, with the size checked, is the payload buffer allocated.
    this.payload = new Uint8Array(size);
    this.payloadFill = 0;
    this.state = "payload";
  }

  private fail(error: FramingError): FrameEvent {
    this.state = "failed";
    this.payload = null;
    return { type: "error", error };
  }
}

function readUint32(bytes: Uint8Array, offset: number): number {
  return (
    ((bytes[offset] as number) * 0x100_0000 +
      ((bytes[offset + 1] as number) << 16) +
      ((bytes[offset + 2] as number) << 8) +
      (bytes[offset + 3] as number)) >>> 0
  );
}
