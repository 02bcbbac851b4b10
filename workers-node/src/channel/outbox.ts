/**
 * The outbound half of a channel: writes frames in order (frame-encoder.ts makes them).
 *
 * Every frame goes to the transport whole, in the order `write` was called, so frames from
 * concurrent senders never interleave (PROTOCOL.md 2.6, 4.6). A frame goes to the transport at
 * once, in the caller's tick (no promise chain, no microtask per frame), unless the transport is
 * over its buffer limit or frames already wait: then it waits here, in order, until `'drain'`. The
 * promise of a frame that waits (or that took the transport over its limit) resolves once it was
 * taken without going over, so senders that await their write are slowed down by a slow reader
 * instead of filling memory; a frame taken at once gets {@link WRITTEN}, already resolved, which a
 * sender may compare against to skip an `await` (a stream's producer does: PROTOCOL.md 13.3).
 *
 * The queue is bounded in total, not per sender (PROTOCOL.md 2.6, 4.5): a request or notification
 * waits for {@link Outbox.room} before it is even encoded, so that what waits for a peer that does
 * not read is its arguments, not their encoded copies (a hundred requests sharing one 5 MB string
 * queue one frame, not a hundred). A frame still in the queue can be taken back
 * ({@link Outbox.withdraw}): a request whose caller gave up before it was written is never sent.
 *
 * Answers to the peer are not held back that way (a request of the peer is answered as soon as its
 * handler is done), so they are counted instead ({@link Outbox.writeAnswer}): once
 * {@link MAX_QUEUED_ANSWERS} of them, or {@link QUEUED_ANSWER_BYTES} bytes, wait in the queue, the
 * channel stops reading until the transport takes them. Nothing else stops the reader here: our
 * own requests waiting to be written must not, or two peers that both send more than their
 * sockets hold would each stop reading while waiting for the other to read, for good.
 *
 * A binary of 64 KiB or more is not copied into its frame: the codec returns the frame as parts
 * (a {@link SplicedFrame}, frame-encoder.ts) and the caller's Uint8Array is written from where it
 * is, header and parts in one writev. Such a frame's promise resolves once it was handed to the
 * operating system, so that a sender may change its buffer once its send resolved.
 */
import { TransportError, describeError } from "../errors.js";
import type { Transport } from "../transports/types.js";
import { SplicedFrame, type Frame, type FrameEncoder } from "./frame-encoder.js";
import { frameSink, type FrameSink, type WriteCallback } from "./frame-sink.js";

/**
 * How many answers to the peer's messages may wait in the queue before the channel stops reading
 * (PROTOCOL.md 2.6, 4.5). They wait only while the peer does not read, so a peer that sends
 * requests without reading the answers stalls instead of making them pile up here. The number of
 * the other SDKs' dispatch bound (requests running or waiting to write their answers), so that a
 * peer that does not read stops all three at the same point.
 */
export const MAX_QUEUED_ANSWERS = 256;

/**
 * How many bytes of answers may wait likewise (one always may, whatever its size, when none
 * waits): the default max_frame_size. Both bounds are where two peers that call each other at once
 * stop getting on: each stops reading once its answers reach one, and if both do, neither reads
 * again. With 16 MiB, eight concurrent requests of 16 MiB each way hung; with 64 MiB they pass.
 */
export const QUEUED_ANSWER_BYTES = 64 * 1024 * 1024;

/**
 * A request or notification is encoded only while at most this many bytes of frames wait in the
 * outbox (not yet handed to the transport); otherwise its sender waits for {@link Outbox.room}.
 */
export const OUTBOX_ROOM = 256 * 1024;

/** What {@link Outbox.write} returns for a frame the transport took at once: nothing to wait for. */
export const WRITTEN: Promise<void> = Promise.resolve();

/** A frame waiting for the transport, and its sender's promise. */
interface Waiting {
  /** Null once taken back ({@link Outbox.withdraw}): it keeps its place, so that it settles in order. */
  frame: Frame | null;
  /** An answer to the peer: counted while it waits (see {@link Outbox.writeAnswer}). */
  readonly answer: boolean;
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** Serializes a channel's writes. */
export class Outbox {
  private readonly sink: FrameSink;
  /** Frames waiting for the transport, oldest first (from `head` on). */
  private waiting: Waiting[] = [];
  private head = 0;
  private waitingBytes = 0;
  /** The transport is over its limit: frames wait until it drains. */
  private blocked = false;
  /** Resolves once the last frame that waited (or blocked) was taken; never rejects. */
  private lastWait: Promise<void> = WRITTEN;
  /** Answers waiting in the queue, and their bytes (see {@link writeAnswer}). */
  private queuedAnswers = 0;
  private queuedAnswerBytes = 0;
  private full = false;
  private closed = false;
  /** Senders waiting for {@link room}. */
  private roomWaiters: Array<() => void> = [];
  private readonly onDrained = (): void => {
    this.blocked = false;
    this.pump();
  };

  /**
   * @param onFull called with true when the answers waiting reach {@link MAX_QUEUED_ANSWERS} or
   *   exceed {@link QUEUED_ANSWER_BYTES}, and with false once they are back under both.
   */
  constructor(
    transport: Transport,
    /** Made the frames; takes back the memory of those it may reuse once written. */
    private readonly frames: FrameEncoder,
    private readonly onFull: (full: boolean) => void = () => undefined,
  ) {
    this.sink = frameSink(transport);
  }

  /** True while too many answers wait for the transport: the channel reads nothing more meanwhile. */
  get answersFull(): boolean {
    return this.full;
  }

  /**
   * True while at most {@link OUTBOX_ROOM} bytes wait to be handed to the transport: a request or
   * notification may be encoded now. Test it again after each {@link room}, right before encoding
   * (no `await` in between): every waiting sender is woken, and the first to encode may fill it.
   */
  get hasRoom(): boolean {
    return this.waitingBytes <= OUTBOX_ROOM;
  }

  /** Bytes of frames waiting to be handed to the operating system: here, and in the transport. */
  get unwrittenBytes(): number {
    return this.waitingBytes + this.sink.bufferedBytes();
  }

  /** Resolves once there may be room again (see {@link hasRoom}), or the outbox was closed. */
  room(): Promise<void> {
    if (this.closed || this.hasRoom) return WRITTEN;
    return new Promise<void>((resolve) => this.roomWaiters.push(resolve));
  }

  /** The channel closed: senders waiting for room are let go (and find it closed). */
  close(): void {
    this.closed = true;
    this.wakeSenders();
  }

  /**
   * Writes one frame, in order after every frame before it: at once when nothing waits and the
   * transport has room ({@link WRITTEN} is returned), else once the transport drains. Resolves
   * once the transport took the frame without going over its limit (a {@link SplicedFrame}: once
   * it was written, so that its sender may change its buffers); rejects if it is closed.
   */
  write(frame: Frame): Promise<void> {
    if (this.blocked || this.head < this.waiting.length) return this.enqueue(frame);
    return this.hand(frame);
  }

  /**
   * Writes an answer to the peer, as {@link write}, counting it while it waits in the queue: too
   * many of those make {@link answersFull} true (the channel stops reading). The transport holds
   * at most one frame over its limit, so that those it took need no counting.
   */
  writeAnswer(frame: Frame): Promise<void> {
    if (this.blocked || this.head < this.waiting.length) return this.enqueue(frame, true);
    return this.hand(frame);
  }

  /**
   * Takes back a frame that still waits in the queue (`written` is what {@link write} returned for
   * it): it will not be written. Returns how many bytes wait before it, not yet handed to the
   * operating system, or null when it is no longer here: the transport has it (partly written or
   * not, it goes whole), or it was taken back already. Its promise still resolves, in order, once
   * the frames before it were taken.
   */
  withdraw(written: Promise<void>): number | null {
    if (written === WRITTEN) return null;
    const waiting = this.waiting;
    let before = this.sink.bufferedBytes();
    for (let index = this.head; index < waiting.length; index++) {
      const entry = waiting[index] as Waiting;
      const frame = entry.frame;
      if (entry.promise !== written) {
        if (frame !== null) before += frame.byteLength;
        continue;
      }
      if (frame === null) return null;
      entry.frame = null; // not written, and not kept alive
      this.waitingBytes -= frame.byteLength;
      this.wakeSenders();
      return before;
    }
    return null;
  }

  /** Resolves once every frame queued so far was handed to the transport. */
  idle(): Promise<void> {
    return this.blocked || this.head < this.waiting.length ? this.lastWait : WRITTEN;
  }

  /**
   * Hands a frame to the transport now; the promise waits for `'drain'` if that took it over its
   * limit, and for a spliced frame until it was written (the caller's buffers are free then).
   */
  private hand(frame: Frame): Promise<void> {
    let accepted: boolean;
    let written: Promise<void> | undefined;
    try {
      if (frame instanceof SplicedFrame) {
        const first = frame.parts[0] as Uint8Array;
        const reusable = this.frames.isReusable(first);
        let settle!: WriteCallback;
        written = new Promise<void>((resolve, reject) => {
          settle = (error) => (error ? reject(new TransportError(`write failed: ${describeError(error)}`, { cause: error })) : resolve());
        });
        accepted = this.sink.writePartsNow(frame.parts, (error) => {
          if (reusable) this.frames.release(first);
          settle(error);
        });
      } else {
        accepted = this.sink.writeNow(frame, this.frames.isReusable(frame) ? () => this.frames.release(frame) : undefined);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    if (accepted) return written ?? WRITTEN;
    this.blocked = true;
    const drained = this.sink.whenDrained();
    // Whether it drained or failed, the next frame is tried (and fails on its own if closed).
    const unblocked = drained.then(this.onDrained, this.onDrained);
    if (this.head === this.waiting.length) this.lastWait = unblocked;
    return written ?? drained;
  }

  private enqueue(frame: Frame, answer = false): Promise<void> {
    this.waitingBytes += frame.byteLength;
    if (answer) {
      this.queuedAnswers++;
      this.queuedAnswerBytes += frame.byteLength;
      this.updateFull();
    }
    let resolve!: () => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<void>((resolveWait, rejectWait) => {
      resolve = resolveWait;
      reject = rejectWait;
    });
    this.waiting.push({ frame, answer, promise, resolve, reject });
    this.lastWait = promise.catch(() => undefined);
    return promise;
  }

  /** Tells the channel when the answers waiting cross the bound, either way. */
  private updateFull(): void {
    // Over the bytes only with more than one: one always goes, whatever its size (PROTOCOL.md 4.5).
    const full = this.queuedAnswers >= MAX_QUEUED_ANSWERS || (this.queuedAnswers > 1 && this.queuedAnswerBytes > QUEUED_ANSWER_BYTES);
    if (full === this.full) return;
    this.full = full;
    this.onFull(full);
  }

  /** Hands waiting frames to the transport, oldest first, until it is over its limit again. */
  private pump(): void {
    const waiting = this.waiting;
    while (!this.blocked && this.head < waiting.length) {
      const entry = waiting[this.head] as Waiting;
      waiting[this.head] = undefined as unknown as Waiting; // let the frame go once written
      this.head++;
      const frame = entry.frame;
      if (frame === null) {
        entry.resolve(); // taken back: nothing to write
        continue;
      }
      this.waitingBytes -= frame.byteLength;
      if (entry.answer) {
        this.queuedAnswers--;
        this.queuedAnswerBytes -= frame.byteLength;
      }
      this.hand(frame).then(entry.resolve, entry.reject);
    }
    if (this.head === waiting.length) {
      this.waiting = [];
      this.head = 0;
    }
    if (this.full) this.updateFull(); // after the loop: the channel may read, and answer, at once
    this.wakeSenders();
  }

  /** Lets the senders waiting for room look again, if there is room (or the outbox closed). */
  private wakeSenders(): void {
    if (this.roomWaiters.length === 0 || !(this.closed || this.hasRoom)) return;
    for (const wake of this.roomWaiters.splice(0)) wake();
  }
}
