/**
 * Transports: byte streams under a channel. The channel above never sees Node streams or their
 * errors; a transport reports what happened through its sink, as {@link TransportError}s.
 */
import type { TransportError } from "../errors.js";

/** Where a transport delivers what it reads. */
export interface TransportSink {
  /** Bytes arrived, in order. */
  data(chunk: Uint8Array): void;
  /** The peer finished writing (EOF). */
  end(): void;
  /** The stream broke (reset, broken pipe); no more data will come. */
  error(error: TransportError): void;
}

/** A bidirectional byte stream. */
export interface Transport {
  /** Starts reading; bytes go to `sink`. Called once. */
  open(sink: TransportSink): void;
  /**
   * Writes one chunk, whole. Resolves once the stream has accepted it without going over its
   * buffer limit; when the stream is full (Node's `write()` returned false), resolves only after
   * `'drain'`, so a caller that awaits each write never buffers without bound.
   * @throws {TransportError} (rejects) if the transport is closed or broken.
   */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * @internal Writes one chunk, whole, now: true while under the buffer limit, false once over it
   * (then wait for {@link whenDrained} before writing more). `onWritten` runs once the chunk was
   * handed to the operating system, or with the error if that failed. No promise per chunk: the
   * channel's writer uses it when the transport has it, and {@link write} otherwise.
   * @throws {TransportError} if the transport is closed or broken.
   */
  writeNow?(chunk: Uint8Array, onWritten?: (error?: Error | null) => void): boolean;
  /**
   * @internal As {@link writeNow} for one frame given as consecutive parts, written in order and
   * without copying them (in one writev where the stream gathers writes); `onWritten` runs once
   * the last of them was handed to the operating system (or failed). The parts must stay
   * unchanged until then. Absent: the channel's writer joins the parts into one chunk.
   */
  writePartsNow?(parts: readonly Uint8Array[], onWritten?: (error?: Error | null) => void): boolean;
  /** @internal Resolves once the transport is under its buffer limit again; rejects if it closes first. */
  whenDrained?(): Promise<void>;
  /** @internal Bytes written to the transport and not yet handed to the operating system. */
  readonly bufferedBytes?: number;
  /** Resolves once everything written so far has been handed to the operating system. */
  flush(): Promise<void>;
  /** Stops reading until {@link resume} (backpressure on the peer). */
  pause(): void;
  /** Resumes reading after {@link pause}. */
  resume(): void;
  /** Ends the stream after pending writes; idempotent. */
  close(): Promise<void>;
  /**
   * @internal Cuts the stream at once: nothing more is read, unwritten output is dropped (a peer
   * that broke the framing, D7). Absent on transports that cannot; `close` is used then.
   */
  abort?(): Promise<void>;
  /** True once closed or broken. */
  readonly closed: boolean;
}
