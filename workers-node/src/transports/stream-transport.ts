/**
 * A {@link Transport} over Node streams: a socket, or stdin + the real stdout.
 *
 * This is the one place where Node stream errors (`EPIPE`, `ECONNRESET`, writes after destroy)
 * become {@link TransportError}s.
 */
import type { Readable, Writable } from "node:stream";

import { TransportError, describeError } from "../errors.js";
import type { Transport, TransportSink } from "./types.js";

/** Writes a chunk the way `Writable.write` does: returns false when the buffer is full. */
export type WriteFunction = (chunk: Uint8Array, callback: (error?: Error | null) => void) => boolean;

/** How a {@link StreamTransport} is built. */
export interface StreamTransportOptions {
  readonly readable: Readable;
  readonly writable: Writable;
  /** Used instead of `writable.write` (stdio: the real stdout write, captured before user code could replace it). */
  readonly write?: WriteFunction;
  /** For messages: "stdio", "socket /tmp/x.sock". */
  readonly description: string;
  /** Ends the stream(s) on close; resolves once they are closed. */
  readonly shutdown: () => Promise<void>;
  /** Destroys the stream(s) at once (see Transport.abort); absent when they cannot be cut. */
  readonly destroy?: () => void;
  /**
   * Gather the chunks written in one tick of the event loop into one system call (`cork()` on the
   * first, `uncork()` on the next tick). Off by default; needs `writable.write` (no `write`).
   */
  readonly coalesce?: boolean;
}

/** What `write` returns for a chunk the stream took without going over its limit: nothing to wait for. */
const WRITTEN: Promise<void> = Promise.resolve();

interface DrainWaiter {
  resolve(): void;
  reject(error: TransportError): void;
}

/** A transport over a readable and a writable stream (which may be the same socket). */
export class StreamTransport implements Transport {
  private sink: TransportSink | null = null;
  private isClosed = false;
  private closing: Promise<void> | null = null;
  /** Writes handed to the stream, and those whose callback ran (callbacks run in write order). */
  private writesStarted = 0;
  private writesDone = 0;
  /** flush() callers, each waiting for the writes started before it, in order. */
  private flushWaiters: Array<{ readonly upTo: number; readonly resolve: () => void }> = [];
  private drainWaiters: DrainWaiter[] = [];
  private readonly writeFunction: WriteFunction;
  private failure: TransportError | null = null;
  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.options.writable.uncork();
  };
  /** The callback of every write (one function for all: no closure per frame). */
  private readonly onWritten = (error?: Error | null): void => {
    this.writesDone++;
    if (this.flushWaiters.length > 0) this.releaseFlushWaiters();
    if (error) this.fail(error);
  };

  constructor(private readonly options: StreamTransportOptions) {
    this.writeFunction =
      options.write ?? ((chunk, callback) => options.writable.write(chunk, callback));
    // Error listeners go on at once: a stream error before open() must not crash the process.
    const { readable, writable } = options;
    readable.on("error", (error: Error) => this.fail(error));
    if ((writable as unknown) !== readable) writable.on("error", (error: Error) => this.fail(error));
    writable.on("drain", () => this.releaseWriters());
    writable.on("close", () => {
      this.rejectWriters(`${options.description} closed`);
      // Nothing more will be written: no flush() waits for a callback that may never come.
      for (const waiter of this.flushWaiters.splice(0)) waiter.resolve();
    });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** @internal Bytes written and not yet handed to the operating system (the stream's `writableLength`). */
  get bufferedBytes(): number {
    return this.options.writable.writableLength;
  }

  /** For messages: what this transport is connected to. */
  get description(): string {
    return this.options.description;
  }

  open(sink: TransportSink): void {
    if (this.sink !== null) throw new TransportError(`${this.options.description}: open() called twice`);
    this.sink = sink;
    const { readable } = this.options;
    readable.on("data", (chunk: Buffer | string) => {
      if (this.isClosed) return;
      sink.data(typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk);
    });
    readable.on("end", () => {
      if (!this.isClosed) sink.end();
    });
    const failure = this.failure;
    if (failure !== null) queueMicrotask(() => sink.error(failure));
  }

  write(chunk: Uint8Array): Promise<void> {
    try {
      return this.writeNow(chunk) ? WRITTEN : this.whenDrained();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * @internal Writes `chunk` now, whole, without a promise: true while the stream is under its
   * high-water mark, false once it is over it (wait for {@link whenDrained} before writing more).
   * `onWritten` runs once the chunk was handed to the operating system (not after a failed write).
   * @throws {TransportError} if the transport is closed or the write fails at once.
   */
  writeNow(chunk: Uint8Array, onWritten?: (error?: Error | null) => void): boolean {
    if (this.isClosed) throw new TransportError(`cannot write: ${this.options.description} is closed`);
    if (this.options.coalesce === true && !this.corked) {
      // Frames that become ready in the same tick (a batch of responses, a stream's items) leave
      // in one writev instead of one write each. Order is kept: the stream queues them in order.
      this.corked = true;
      this.options.writable.cork();
      process.nextTick(this.uncork);
    }
    return this.writeOne(chunk, onWritten);
  }

  /**
   * @internal Writes one frame given as parts, in order, none of them copied: the stream holds
   * them until they are written, in one writev when it is corked (here at least for the frame).
   * `onWritten` runs with the last part's outcome.
   * @throws {TransportError} if the transport is closed or the write fails at once.
   */
  writePartsNow(parts: readonly Uint8Array[], onWritten?: (error?: Error | null) => void): boolean {
    if (this.isClosed) throw new TransportError(`cannot write: ${this.options.description} is closed`);
    const { writable } = this.options;
    // Corked for this tick (coalesce) or at least for the frame: its parts leave together.
    const corkHere = this.options.write === undefined && !this.corked;
    if (corkHere) {
      if (this.options.coalesce === true) {
        this.corked = true;
        process.nextTick(this.uncork);
      }
      writable.cork();
    }
    let accepted = true;
    try {
      for (let index = 0; index < parts.length; index++) {
        accepted = this.writeOne(parts[index] as Uint8Array, index === parts.length - 1 ? onWritten : undefined);
      }
    } finally {
      if (corkHere && this.options.coalesce !== true) writable.uncork();
    }
    return accepted;
  }

  private writeOne(chunk: Uint8Array, onWritten?: (error?: Error | null) => void): boolean {
    this.writesStarted++;
    const callback =
      onWritten === undefined
        ? this.onWritten
        : (error?: Error | null): void => {
            this.onWritten(error);
            onWritten(error);
          };
    try {
      return this.writeFunction(chunk, callback);
    } catch (error) {
      this.onWritten();
      this.fail(error);
      throw new TransportError(`write to ${this.options.description} failed: ${describeError(error)}`, { cause: error });
    }
  }

  /**
   * @internal Resolves once the stream took back everything it buffered ('drain'), at once if it
   * is not over its high-water mark. Rejects if the transport closes or breaks first.
   */
  whenDrained(): Promise<void> {
    if (this.isClosed) return Promise.reject(this.failure ?? new TransportError(`cannot write: ${this.options.description} is closed`));
    if (!this.options.writable.writableNeedDrain) return WRITTEN;
    // The stream is over its high-water mark: the caller waits for 'drain' (backpressure).
    return new Promise<void>((resolve, reject) => this.drainWaiters.push({ resolve, reject }));
  }

  flush(): Promise<void> {
    if (this.writesDone >= this.writesStarted) return Promise.resolve();
    return new Promise<void>((resolve) => this.flushWaiters.push({ upTo: this.writesStarted, resolve }));
  }

  pause(): void {
    this.options.readable.pause();
  }

  resume(): void {
    if (!this.isClosed) this.options.readable.resume();
  }

  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.isClosed = true;
    this.rejectWriters(`${this.options.description} closed`);
    this.closing = this.options.shutdown().catch(() => undefined);
    return this.closing;
  }

  /** @internal */
  abort(): Promise<void> {
    if (this.options.destroy === undefined) return this.close();
    this.isClosed = true;
    this.rejectWriters(`${this.options.description} closed`);
    this.options.destroy();
    this.closing ??= Promise.resolve();
    return this.closing;
  }

  private fail(error: unknown): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const failure = new TransportError(`${this.options.description} failed: ${describeError(error)}`, { cause: error });
    this.failure = failure;
    for (const waiter of this.drainWaiters.splice(0)) waiter.reject(failure);
    this.closing = this.options.shutdown().catch(() => undefined);
    this.sink?.error(failure);
  }

  private releaseFlushWaiters(): void {
    let released = 0;
    const waiters = this.flushWaiters;
    while (released < waiters.length && (waiters[released] as { upTo: number }).upTo <= this.writesDone) released++;
    for (const waiter of waiters.splice(0, released)) waiter.resolve();
  }

  private releaseWriters(): void {
    for (const waiter of this.drainWaiters.splice(0)) waiter.resolve();
  }

  private rejectWriters(reason: string): void {
    const error = new TransportError(`cannot write: ${reason}`);
    for (const waiter of this.drainWaiters.splice(0)) waiter.reject(error);
  }
}
