/**
 * Where the outbox hands its frames: a transport's promise-free write, or an adapter over the
 * `write` of a transport of the program's own.
 */
import { describeError } from "../errors.js";
import type { Transport } from "../transports/types.js";

/** Runs once a chunk was handed to the operating system, or with the error if that failed. */
export type WriteCallback = (error?: Error | null) => void;

/** Where frames go: a transport's promise-free write, or an adapter over its `write`. */
export interface FrameSink {
  writeNow(chunk: Uint8Array, onWritten?: WriteCallback): boolean;
  writePartsNow(parts: readonly Uint8Array[], onWritten?: WriteCallback): boolean;
  whenDrained(): Promise<void>;
  /** Bytes it holds, not yet handed to the operating system (0 when the transport does not tell). */
  bufferedBytes(): number;
}

/**
 * The transport's promise-free write when it has one; else its `write`, one frame at a time. A
 * transport that cannot write parts gets them joined into one chunk (a copy).
 */
export function frameSink(transport: Transport): FrameSink {
  if (transport.writeNow !== undefined && transport.whenDrained !== undefined) {
    const writeNow = transport.writeNow.bind(transport);
    return {
      writeNow,
      writePartsNow: transport.writePartsNow?.bind(transport) ?? ((parts, onWritten) => writeNow(Buffer.concat(parts), onWritten)),
      whenDrained: transport.whenDrained.bind(transport),
      bufferedBytes: () => transport.bufferedBytes ?? 0,
    };
  }
  // A transport of the program's own: each frame waits for the previous one's promise, as before.
  let last: Promise<void> = Promise.resolve();
  const writeNow = (chunk: Uint8Array, onWritten?: WriteCallback): boolean => {
    last = transport.write(chunk);
    if (onWritten !== undefined) {
      last.then(() => transport.flush()).then(
        () => onWritten(),
        (error: unknown) => onWritten(error instanceof Error ? error : new Error(describeError(error))),
      );
    }
    return false;
  };
  return {
    writeNow,
    writePartsNow: (parts, onWritten) => writeNow(Buffer.concat(parts), onWritten),
    whenDrained: () => last,
    bufferedBytes: () => transport.bufferedBytes ?? 0,
  };
}
