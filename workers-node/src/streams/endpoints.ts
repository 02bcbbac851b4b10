/**
 * The two ends of one stream inside a responder (PROTOCOL.md 13.3, 13.4): the producer of an
 * output stream (credit, seq, a send that waits with zero credit) and the consumer of an input
 * stream (a bounded buffer, the credit policy). Sans-IO: messages leave through `emit`.
 */
import { WRITTEN } from "../channel/outbox.js";
import { RemoteError } from "../errors.js";
import type { RequestId } from "../jsonrpc/messages.js";
import { MAX_WINDOW, type StreamDir } from "./wire.js";

/**
 * Sends one stream notification: encodes it now (throwing if it cannot be), resolves once written.
 * The channel's emit returns `WRITTEN` (channel/outbox.ts) when the frame went to the transport at
 * once, with room to spare: a producer then has nothing to wait for.
 */
export type Emit = (method: string, params: Record<string, unknown>) => Promise<void>;

/** The error a stream's step raises once it is failed (-32010) or closed (-32011). */
export function streamError(code: number, id: RequestId, dir: StreamDir, message: string): RemoteError {
  return new RemoteError(code, message, { stream: id, dir });
}

/**
 * The producing end of a stream: sends only with credit, waits without.
 *
 * An item sent with credit goes to the channel's writer at once, and the producer goes on without
 * waiting for the write: up to its credit, items queue in the writer, which gathers those of one
 * tick into one system call. The credit bounds what is queued (13.3). The producer waits only for
 * credit, and for the socket to drain when the writer reports it full (a frame that took the
 * transport over its limit), so a peer that stops reading the socket stops the producer too.
 */
export class StreamProducer {
  private credit: number;
  private seq = 0;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(
    private readonly id: RequestId,
    private readonly dir: StreamDir,
    window: number,
    private readonly emit: Emit,
  ) {
    this.credit = window;
  }

  /** Items that may be sent now. */
  get available(): number {
    return this.credit;
  }

  /** Whether the stream has ended or failed: every send rejects. */
  get closed(): boolean {
    return this.failure !== null;
  }

  /**
   * Sends one item, once there is credit; resolves once it was handed to the channel's writer (and,
   * if that filled the socket, once it drained; an item holding a binary of 64 KiB or more, which
   * is written from its own memory, once it was written). Rejects with the stream's failure (-32002
   * cancelled, -32010, -32011) even while waiting; an item that cannot be encoded rejects and takes
   * no credit.
   */
  send(value: unknown): Promise<void> {
    try {
      return this.trySend(value) ?? WRITTEN;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * @internal {@link send} without a promise when there is nothing to wait for: with credit, the
   * item is handed to the writer and null is returned; otherwise the promise to await (credit, or
   * a full socket). Throws at once (the stream's failure, an item that cannot be encoded).
   */
  trySend(value: unknown): Promise<void> | null {
    if (this.failure !== null) throw this.failure;
    if (this.credit === 0) return this.sendWithCredit(value);
    const written = this.emitItem(value);
    return written === WRITTEN ? null : this.untilWritten(written);
  }

  /** Waits for credit (or the failure), then sends. */
  private async sendWithCredit(value: unknown): Promise<void> {
    while (this.credit === 0 && this.failure === null) {
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    if (this.failure !== null) throw this.failure;
    const written = this.emitItem(value);
    if (written !== WRITTEN) await this.untilWritten(written);
  }

  /** Emits the next item: encoded now (throwing if it cannot be), one credit taken. */
  private emitItem(value: unknown): Promise<void> {
    const written = this.emit("$/stream/item", { stream: this.id, dir: this.dir, seq: this.seq, value });
    this.credit--;
    this.seq++;
    return written;
  }

  /** Waits for a write the writer could not take at once (a full socket), or the stream's failure. */
  private async untilWritten(written: Promise<void>): Promise<void> {
    let outcome: { readonly error: unknown } | "written" | null = null;
    written.then(
      () => {
        outcome = "written";
        this.wakeUp();
      },
      (error: unknown) => {
        outcome = { error };
        this.wakeUp();
      },
    );
    // Credit arriving meanwhile wakes this too: only the write or the failure ends the wait.
    while (outcome === null && this.failure === null) await new Promise<void>((resolve) => (this.wake = resolve));
    if (outcome === "written") return;
    if (outcome !== null) throw (outcome as { readonly error: unknown }).error;
    throw this.failure;
  }

  /** Credit from the consumer; false when it would take the credit above {@link MAX_WINDOW} (a protocol error). */
  grant(add: number): boolean {
    if (this.credit + add > MAX_WINDOW) return false;
    this.credit += add;
    this.wakeUp();
    return true;
  }

  /** Ends the stream: every later (or waiting) send rejects with `error`. The first failure wins. */
  fail(error: Error): void {
    if (this.failure === null) this.failure = error;
    this.wakeUp();
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

type Ending = { readonly ok: true } | { readonly ok: false; readonly error: RemoteError };

/** The consuming end of an input stream: an AsyncIterable of the items, granting credit as they are taken. */
export class StreamConsumer implements AsyncIterable<unknown> {
  private readonly buffer: unknown[] = [];
  /** Credit granted and not yet used by an item. */
  private unused = 0;
  private taken = 0;
  private seq = 0;
  private ending: Ending | null = null;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(
    private readonly id: RequestId,
    private readonly dir: StreamDir,
    readonly window: number,
    private readonly emit: Emit,
  ) {}

  /**
   * Opens the window: an input stream's consumer grants it at once (13.3); an output stream's
   * consumer (`grant` false) gave it in its request's descriptor.
   */
  open(grant = true): void {
    this.unused = this.window;
    if (grant) void this.emit("$/stream/credit", { stream: this.id, dir: this.dir, add: this.window }).catch(() => undefined);
  }

  /** An item from the producer; returns what was broken (a protocol error), or null. */
  receiveItem(seq: number, value: unknown): string | null {
    if (this.failure !== null || this.ending !== null) return null;
    if (this.unused === 0) return `item seq ${seq} exceeds the window of ${this.window}`;
    if (seq !== this.seq) return `item seq ${seq} is not the next one (${this.seq})`;
    this.unused--;
    this.seq++;
    this.buffer.push(value);
    this.wakeUp();
    return null;
  }

  /** The producer's end: normal, or its error (raised by the read after the buffered items). */
  receiveEnd(error?: RemoteError): void {
    if (this.failure !== null || this.ending !== null) return;
    this.ending = error === undefined ? { ok: true } : { ok: false, error };
    this.wakeUp();
  }

  /** Fails the stream: buffered items are discarded, the next read raises `error`. The first failure wins. */
  fail(error: Error): void {
    if (this.failure !== null) return;
    this.failure = error;
    this.buffer.length = 0;
    this.wakeUp();
  }

  /** Takes the next item; `done` at the normal end; rejects on the producer's error or a failure. */
  async next(): Promise<IteratorResult<unknown, undefined>> {
    for (;;) {
      if (this.failure !== null) throw this.failure;
      if (this.buffer.length > 0) return { done: false, value: this.take() };
      if (this.ending !== null) {
        if (this.ending.ok) return { done: true, value: undefined };
        throw this.ending.error;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<unknown, undefined> {
    return { next: () => this.next() };
  }

  /** Takes a buffered item and grants credit per the policy of 13.3 (MUST: vectors replay it). */
  private take(): unknown {
    const value = this.buffer.shift();
    this.taken++;
    if (this.taken >= Math.ceil(this.window / 2) && this.ending === null) {
      const add = this.taken;
      this.unused += add;
      this.taken = 0;
      void this.emit("$/stream/credit", { stream: this.id, dir: this.dir, add }).catch(() => undefined);
    }
    return value;
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

/** The error a read raises when the producer sent `$/stream/error`. */
export function producerError(code: number, message: string, data?: unknown): RemoteError {
  return new RemoteError(code, message, data);
}
