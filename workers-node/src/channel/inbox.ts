/**
 * A channel's read side: the bytes it reads made into items, kept in stream order until the
 * channel processes them; whether the transport is read meanwhile (PROTOCOL.md 4.5); and what a
 * framing error does to the connection.
 *
 * Transport chunks go through the frame decoder; each frame is decoded and classified as it
 * arrives (inbound.ts) and queued in the inbox, which is drained in order. It is not drained, and
 * the transport is paused, while one of these holds:
 * - the inbound filter (the data channel's `$/hello` gate) works on an item: everything behind it
 *   waits, in order;
 * - too many answers wait in the outbox (outbox.ts): a peer that sends without reading what we
 *   answer stops being read, so the answers cannot pile up in memory;
 * - the next item is a notification whose handler's queue is full (dispatch.ts): it stays first,
 *   and nothing more is read until the handler takes one. Never a notification dropped.
 *
 * A control line over the limit is answered `-32005`, and reading goes on with the next line. A
 * length-prefixed stream cannot be resynchronized (PROTOCOL.md 2.2, 2.3): after a frame error
 * nothing more is read and the connection is cut (D7), after at most one courtesy `-32005`, and
 * never that before `$/hello` (D14).
 */
import type { Codec } from "../codecs/types.js";
import type { FramingError, IpcError } from "../errors.js";
import type { FrameDecoder } from "../framing/types.js";
import type { RequestId } from "../jsonrpc/messages.js";
import type { JsonRpcProtocol } from "../jsonrpc/protocol.js";
import { withTimeout } from "../timeouts.js";
import type { Transport } from "../transports/types.js";
import type { Dispatcher } from "./dispatch.js";
import type { WireError } from "./handlers.js";
import { decodeFrame, sizeError, type InboundFilter, type InboundItem } from "./inbound.js";
import type { Outbox } from "./outbox.js";

/** How long a courtesy `-32005` may take to leave before a connection that must close is cut. */
const COURTESY_FLUSH_MS = 100;

/** An inbound item but a framing error. */
export type MessageOrParseError = Exclude<InboundItem, { readonly kind: "framing_error" }>;

/** What the inbox hands its items to, and answers and closes through: the channel. */
export interface InboxProcessor {
  /** Processes one message or parse error, in stream order (framing errors are the inbox's). */
  process(item: MessageOrParseError): void;
  /** Bad input, or an inbound filter that failed. */
  report(error: unknown): void;
  sendError(id: RequestId | null, error: WireError): Promise<void>;
  /** Closes the channel; `abort` cuts the transport at once. */
  shutdown(error: IpcError, abort: boolean): Promise<void>;
}

/** A channel's read side: the items it read and has not processed yet, in stream order. */
export class Inbox {
  /** Installed by the worker layer (`Channel.setInboundFilter`); null lets everything through. */
  filter: InboundFilter | null = null;
  private items: InboundItem[] = [];
  /** The next item to process (taken by index: a shift per item is quadratic in a batch). */
  private head = 0;
  private held = false;
  /** The next item is a notification that waits for room in its handler's queue (4.5). */
  private notificationsFull = false;
  private readingPaused = false;
  private closed = false;
  /** Whether a frame over the limit gets a `-32005` before the connection closes (not before `$/hello`: D14). */
  private oversizeCourtesy = true;

  constructor(
    private readonly decoder: FrameDecoder,
    private readonly transport: Transport,
    private readonly codec: Codec,
    private readonly protocol: JsonRpcProtocol,
    private readonly outbox: Outbox,
    private readonly dispatcher: Dispatcher,
    private readonly processor: InboxProcessor,
  ) {}

  /** Reads a chunk of the transport's. */
  read(chunk: Uint8Array): void {
    this.receive(this.decoder.push(chunk));
  }

  /** The transport's end: a frame cut short is a framing error. */
  end(): void {
    this.receive(this.decoder.end());
  }

  /**
   * Before `$/hello` (D14): the first frame may declare at most `limit` bytes, and a frame over
   * the limit closes the connection silently, until {@link allowOversizeCourtesy}.
   */
  guardFirstFrame(limit: number): void {
    this.decoder.limitFirstFrame?.(limit);
    this.oversizeCourtesy = false;
  }

  /** The peer is authenticated: a frame over the limit gets one `-32005` before the close (D7). */
  allowOversizeCourtesy(): void {
    this.oversizeCourtesy = true;
  }

  /** Queues what the decoder made of a chunk, then processes what may be. */
  private receive(events: ReturnType<FrameDecoder["push"]>): void {
    for (const event of events) {
      this.items.push(event.type === "error" ? { kind: "framing_error", error: event.error } : decodeFrame(this.codec, this.protocol, event.frame));
    }
    this.drain();
  }

  /** A notification handler took one from its queue: the one that waited may fit now. */
  notificationTaken(): void {
    if (!this.notificationsFull) return;
    this.notificationsFull = false;
    this.updateReading();
    this.drain();
  }

  /** The channel closed: what was not processed never will be, and reading is never resumed. */
  close(): void {
    this.closed = true;
    this.items = [];
    this.head = 0;
  }

  /**
   * Reads from the transport unless the inbox is held by the filter, too many answers wait in the
   * outbox, or a notification waits for room in its handler's queue.
   */
  updateReading(): void {
    const pause = this.held || this.outbox.answersFull || this.notificationsFull;
    if (pause === this.readingPaused || this.closed) return;
    this.readingPaused = pause;
    if (pause) this.transport.pause();
    else this.transport.resume();
  }

  drain(): void {
    while (!this.held && !this.outbox.answersFull && !this.notificationsFull && this.head < this.items.length && !this.closed) {
      const item = this.items[this.head] as InboundItem;
      if (item.kind === "message" && item.message.kind === "notification" && this.dispatcher.notificationMustWait(item.message.method, item.size)) {
        // Its handler's queue is full: it stays first in the inbox, and nothing more is read (4.5).
        this.notificationsFull = true;
        this.updateReading();
        return;
      }
      this.items[this.head++] = undefined as unknown as InboundItem; // processed: not kept alive
      if (this.head === this.items.length) this.head = this.items.length = 0;
      // Framing errors are about the stream, not a message: no filter sees them.
      const verdict = this.filter === null || item.kind === "framing_error" ? true : this.filter(item);
      if (verdict === true) this.process(item);
      else if (verdict !== false) {
        // The filter needs time (an async hook): hold everything behind this item, in order.
        this.held = true;
        this.updateReading();
        verdict
          .then((pass) => pass && !this.closed && this.process(item), (error: unknown) => this.processor.report(error))
          .finally(() => {
            this.held = false;
            this.updateReading();
            this.drain();
          });
      }
    }
  }

  private process(item: InboundItem): void {
    if (item.kind === "framing_error") this.onFramingError(item.error);
    else this.processor.process(item);
  }

  private onFramingError(error: FramingError): void {
    this.processor.report(error);
    const tooLarge = error.kind === "line_too_long" || error.kind === "frame_too_large";
    if (!this.decoder.failed) {
      // A control line over the limit: answered, and reading goes on with the next line.
      if (tooLarge) void this.processor.sendError(null, sizeError(error));
      return;
    }
    // A length-prefixed stream cannot be resynchronized (PROTOCOL.md 2.2, 2.3): read nothing more
    // (D7); at most one courtesy -32005 leaves first, and never before $/hello (D14).
    this.transport.pause();
    const courtesy = tooLarge && this.oversizeCourtesy ? this.processor.sendError(null, sizeError(error)).then(() => this.transport.flush()) : Promise.resolve();
    void withTimeout(courtesy, COURTESY_FLUSH_MS).then(() => this.processor.shutdown(error, true));
  }
}
