/**
 * The outbound half of a channel: encodes messages into frames, and writes frames one at a time.
 *
 * Every frame goes to the transport in a single `write`, and each write starts only after the
 * previous one was accepted, so frames from concurrent senders never interleave (PROTOCOL.md 2.6).
 * The transport's `write` waits for `'drain'` when the stream is full, so senders that await their
 * write are slowed down by a slow reader instead of filling memory.
 */
import type { Codec } from "../codecs/types.js";
import { ErrorCodes, FramingError, IpcError, describeError } from "../errors.js";
import type { Framing } from "../framing/types.js";
import type { RequestId } from "../jsonrpc/messages.js";
import type { JsonRpcProtocol } from "../jsonrpc/protocol.js";
import type { Transport } from "../transports/types.js";
import type { WireError } from "./handlers.js";

/**
 * How many bytes of frames may wait in the outbox, not yet handed to the transport, before the
 * channel stops taking in new messages. Frames wait only while the transport is full (the peer is
 * not reading), so a peer that sends requests without reading the answers stalls instead of
 * making the answers pile up here.
 */
export const OUTBOX_HIGH_WATER_MARK = 1024 * 1024;

/** Serializes a channel's writes. */
export class Outbox {
  private tail: Promise<void> = Promise.resolve();
  private waitingBytes = 0;
  private full = false;
  /** Frames whose memory goes back to the codec once written (made here, seen by no one else). */
  private readonly reusable = new WeakSet<Uint8Array>();

  /**
   * @param onFull called with true when the frames waiting here exceed
   *   {@link OUTBOX_HIGH_WATER_MARK}, and with false once every one of them was handed over.
   */
  constructor(
    private readonly transport: Transport,
    private readonly framing: Framing,
    private readonly codec: Codec,
    private readonly onFull: (full: boolean) => void = () => undefined,
  ) {}

  /** True while more than {@link OUTBOX_HIGH_WATER_MARK} bytes wait to be handed to the transport. */
  get isFull(): boolean {
    return this.full;
  }

  /**
   * Encodes and frames one message, without writing anything.
   * @throws {CodecError} if the message has no form in the codec.
   * @throws {FramingError} if the frame breaks the framing's limits.
   */
  encode(message: unknown): Uint8Array {
    const { framing, codec } = this;
    if (framing.headerSize !== undefined && framing.encodeInPlace !== undefined && codec.encodeWithRoom !== undefined) {
      // The codec leaves room for the header and the framing fills it in: the payload is not copied.
      const frame = framing.encodeInPlace(codec.encodeWithRoom(message, framing.headerSize));
      if (codec.release !== undefined) this.reusable.add(frame);
      return frame;
    }
    return framing.encode(codec.encode(message));
  }

  /**
   * Frames a response. A result that cannot be sent is answered with an error response instead
   * (PROTOCOL.md 4.9): `-32005` when it is over the peer's limit, `-32603` when the codec has no
   * form for it. Returns the error when not even that can be framed.
   */
  resultFrame(protocol: JsonRpcProtocol, id: RequestId, result: unknown): Uint8Array | IpcError {
    try {
      return this.encode(protocol.response(id, result));
    } catch (error) {
      const wire: WireError =
        error instanceof FramingError
          ? tooLargeResponse(error)
          : { code: ErrorCodes.InternalError, message: `result cannot be sent: ${describeError(error)}`, data: { type: "CodecError" } };
      return this.errorFrame(protocol, id, wire);
    }
  }

  /**
   * Frames an error response. `data` the codec cannot carry is dropped (and said so in the
   * message); an error response over the peer's limit becomes the small `-32005` (D1), so that
   * the request is answered whatever happens.
   */
  errorFrame(protocol: JsonRpcProtocol, id: RequestId | null, error: WireError): Uint8Array | IpcError {
    try {
      return this.encode(protocol.errorResponse(id, error.code, error.message, error.data));
    } catch (problem) {
      try {
        if (problem instanceof FramingError) {
          const replacement = tooLargeResponse(problem);
          return this.encode(protocol.errorResponse(id, replacement.code, replacement.message, replacement.data));
        }
        return this.encode(protocol.errorResponse(id, error.code, `${error.message} (error data dropped: ${describeError(problem)})`));
      } catch (fatal) {
        return fatal instanceof IpcError ? fatal : new IpcError(describeError(fatal), { cause: fatal });
      }
    }
  }

  /** Queues one frame; resolves once the transport accepted it. */
  write(frame: Uint8Array): Promise<void> {
    const size = frame.byteLength;
    this.waitingBytes += size;
    if (!this.full && this.waitingBytes > OUTBOX_HIGH_WATER_MARK) {
      this.full = true;
      this.onFull(true);
    }
    const written = this.tail.then(() => {
      this.waitingBytes -= size;
      const accepted = this.transport.write(frame);
      if (this.reusable.has(frame)) {
        // flush() resolves once this write (the latest) reached the operating system.
        const release = (): void => this.codec.release?.(frame);
        accepted.then(() => this.transport.flush()).then(release, () => undefined);
      }
      if (this.full && this.waitingBytes === 0) {
        this.full = false;
        this.onFull(false);
      }
      return accepted;
    });
    this.tail = written.catch(() => undefined);
    return written;
  }

  /** Resolves once every frame queued so far was handed to the transport. */
  idle(): Promise<void> {
    return this.tail;
  }
}

/** The `-32005` that replaces a response over the peer's limit (PROTOCOL.md 4.9, D1, D17). */
function tooLargeResponse(error: FramingError): WireError {
  const limitName = error.kind === "line_too_long" ? "max_line_length" : "max_frame_size";
  return {
    code: ErrorCodes.MessageTooLarge,
    message: `response of ${error.size} bytes exceeds ${limitName} of ${error.limit} bytes`,
    data: { size: error.size, limit: error.limit },
  };
}
