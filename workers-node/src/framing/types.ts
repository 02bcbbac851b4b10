/**
 * Framing: cutting a byte stream into messages and back. Pure code: bytes in, frames out, no I/O.
 */
import type { FramingError } from "../errors.js";

/** One thing a decoder found in the stream: a complete frame, or a framing error. */
export type FrameEvent =
  | { readonly type: "frame"; readonly frame: Uint8Array }
  | { readonly type: "error"; readonly error: FramingError };

/**
 * An incremental decoder for one stream. Feed it chunks as they arrive, in order; it returns the
 * events those bytes complete. Frames may share memory with the chunks pushed, so do not modify a
 * chunk after pushing it.
 */
export interface FrameDecoder {
  /** Adds bytes; returns the frames and errors they complete, in stream order. */
  push(chunk: Uint8Array): FrameEvent[];
  /** Signals the end of the stream; returns a `truncated` error if it ended inside a frame. */
  end(): FrameEvent[];
  /** True once a fatal error was reported: the stream cannot be resynchronized, further bytes are ignored. */
  readonly failed: boolean;
  /** @internal Gives the first frame a tighter size limit (length-prefixed framing only; D14). */
  limitFirstFrame?(limit: number): void;
}

/** A framing scheme: {@link LengthPrefixedFraming} or {@link LineDelimitedFraming}. */
export interface Framing {
  /** The largest payload, in bytes, that this framing reads and writes. */
  readonly maxPayloadSize: number;
  /** A fresh decoder for one stream. */
  createDecoder(): FrameDecoder;
  /**
   * Frames one payload for writing.
   * @throws {FramingError} if the payload breaks the rules (empty, too large, contains a newline).
   */
  encode(payload: Uint8Array): Uint8Array;
  /**
   * @internal How many bytes a frame has before its payload, when the framing can frame a payload
   * in place (see {@link Framing.encodeInPlace}); absent when it cannot.
   */
  readonly headerSize?: number;
  /**
   * @internal Frames in place a payload that was written after `headerSize` free bytes of `room`
   * (a codec's `encodeWithRoom`): fills in the header and returns `room` itself, no copy. With
   * `frameSize`, `room` is only the first part of a frame of that many bytes (header included),
   * whose other parts follow it.
   * @throws {FramingError} as {@link Framing.encode} does.
   */
  encodeInPlace?(room: Uint8Array, frameSize?: number): Uint8Array;
}
