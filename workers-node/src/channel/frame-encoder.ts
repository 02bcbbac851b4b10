/**
 * A channel's messages made into frames, before the outbox writes them (outbox.ts): encoded and
 * framed synchronously, so that an unencodable value fails before anything is written.
 *
 * A request or notification of ours that cannot be framed is refused with an error saying what it
 * was (PROTOCOL.md 12.1). An answer to the peer never is: one that cannot be sent becomes an error
 * response, so that every request is answered whatever happens (PROTOCOL.md 4.9, 4.10).
 *
 * A binary of 64 KiB or more is not copied into its frame: the codec returns the frame as parts
 * (a {@link SplicedFrame}), which the outbox writes from where they are. Frames made here in memory
 * large enough for the codec to reuse are remembered, so that the outbox can hand that memory back
 * ({@link FrameEncoder.release}) once the frame was written.
 */
import type { Codec } from "../codecs/types.js";
import { ErrorCodes, FramingError, IpcError, describeError } from "../errors.js";
import type { Framing } from "../framing/types.js";
import type { RequestId } from "../jsonrpc/messages.js";
import type { JsonRpcProtocol } from "../jsonrpc/protocol.js";
import { unicodeText, type WireError } from "./handlers.js";

/**
 * Frames whose memory may be big enough for the codec to reuse (its spare buffers are far larger):
 * only these are handed back through `release`. Small frames live in Node's shared pool.
 */
const RELEASE_MIN_BUFFER = 64 * 1024;

/**
 * A frame given as consecutive parts: the bytes the codec made, with the caller's large binaries
 * spliced in between them (not copied). The first part starts with the frame's header.
 */
export class SplicedFrame {
  constructor(
    readonly parts: Uint8Array[],
    /** The frame's size, header included. */
    readonly byteLength: number,
  ) {}
}

/** One frame to write: its bytes, or its parts. */
export type Frame = Uint8Array | SplicedFrame;

/** Encodes and frames a channel's messages, writing nothing. */
export class FrameEncoder {
  /** Frames whose memory goes back to the codec once written (made here, seen by no one else). */
  private readonly reusable = new WeakSet<Uint8Array>();

  constructor(
    private readonly framing: Framing,
    private readonly codec: Codec,
  ) {}

  /**
   * Whether `frame` (a frame's bytes, or a spliced frame's first part) was made here in memory the
   * codec may reuse: then {@link release} it once it was written.
   */
  isReusable(frame: Uint8Array): boolean {
    return frame.buffer.byteLength >= RELEASE_MIN_BUFFER && this.reusable.has(frame);
  }

  /** `frame` was written: its memory may serve a later message. */
  release(frame: Uint8Array): void {
    this.codec.release?.(frame);
  }

  /**
   * Encodes and frames one message, without writing anything.
   * @throws {CodecError} if the message has no form in the codec.
   * @throws {FramingError} if the frame breaks the framing's limits.
   */
  encode(message: unknown): Frame {
    const { framing, codec } = this;
    if (framing.headerSize !== undefined && framing.encodeInPlace !== undefined && codec.encodeWithRoom !== undefined) {
      // The codec leaves room for the header and the framing fills it in: the payload is not copied.
      const encoded = codec.encodeWithRoom(message, framing.headerSize);
      if (!Array.isArray(encoded)) {
        const frame = framing.encodeInPlace(encoded);
        if (codec.release !== undefined && frame.buffer.byteLength >= RELEASE_MIN_BUFFER) this.reusable.add(frame);
        return frame;
      }
      // Large binaries spliced in: the header goes in front of the first part, sized for all of them.
      let size = 0;
      for (const part of encoded) size += part.byteLength;
      const first = framing.encodeInPlace(encoded[0] as Uint8Array, size);
      if (codec.release !== undefined && first.buffer.byteLength >= RELEASE_MIN_BUFFER) this.reusable.add(first);
      return new SplicedFrame(encoded, size);
    }
    return framing.encode(codec.encode(message));
  }

  /**
   * Encodes and frames a request or notification of ours, as {@link encode} does; one over the
   * peer's limit is refused with a FramingError saying what it was (`request of N bytes exceeds
   * max_frame_size of M bytes`, PROTOCOL.md 12.1) and what to do. Nothing is written.
   * @throws {CodecError} if the message has no form in the codec.
   * @throws {FramingError} if the frame breaks the framing's limits.
   */
  encodeOutgoing(message: unknown, what: "request" | "notification"): Frame {
    try {
      return this.encode(message);
    } catch (error) {
      throw error instanceof FramingError ? namedSizeError(error, what) : error;
    }
  }

  /**
   * Frames a response. A result that cannot be sent is answered with an error response instead
   * (PROTOCOL.md 4.9): `-32005` when it is over the peer's limit, `-32603` when the codec has no
   * form for it. Returns the error when not even that can be framed.
   */
  resultFrame(protocol: JsonRpcProtocol, id: RequestId, result: unknown): Frame | IpcError {
    try {
      return this.encode(protocol.response(id, result));
    } catch (error) {
      const wire: WireError =
        error instanceof FramingError
          ? tooLargeResponse(error)
          : { code: ErrorCodes.InternalError, message: `result cannot be sent: ${describeError(error)}` };
      return this.errorFrame(protocol, id, wire);
    }
  }

  /**
   * Frames an error response, so that the request is answered whatever happens (PROTOCOL.md 4.9,
   * 4.10): one over the peer's limit becomes the small `-32005` (D1); one the codec cannot encode
   * (a typed error's `data` with a lone surrogate or a bigint out of range...) becomes `-32603`
   * with the same id, as a result does: its `data` is sent as given or not at all.
   */
  errorFrame(protocol: JsonRpcProtocol, id: RequestId | null, error: WireError): Frame | IpcError {
    try {
      return this.encode(protocol.errorResponse(id, error.code, error.message, error.data));
    } catch (problem) {
      try {
        const replacement: WireError =
          problem instanceof FramingError
            ? tooLargeResponse(problem)
            : {
                code: ErrorCodes.InternalError,
                // The reason may quote an encode hook's own error, which may not be Unicode either.
                message: unicodeText(`error response (code ${error.code}) cannot be sent: ${describeError(problem)}`),
              };
        return this.encode(protocol.errorResponse(id, replacement.code, replacement.message, replacement.data));
      } catch (fatal) {
        return fatal instanceof IpcError ? fatal : new IpcError(describeError(fatal), { cause: fatal });
      }
    }
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

/**
 * A size error of the framing, told as the request or notification it refused (PROTOCOL.md 12.1):
 * the framing only knows a frame or a line. Same kind, size and limit; other errors unchanged.
 */
function namedSizeError(error: FramingError, what: "request" | "notification"): FramingError {
  const { kind, size, limit } = error;
  if ((kind !== "frame_too_large" && kind !== "line_too_long") || size === undefined) return error;
  const advice = kind === "frame_too_large" ? "raise max_frame_size or split the payload" : "raise max_line_length or use the data channel";
  const limitName = kind === "frame_too_large" ? "max_frame_size" : "max_line_length";
  return new FramingError(kind, `${what} of ${size} bytes exceeds ${limitName} of ${limit} bytes: ${advice}`, { size, limit });
}
