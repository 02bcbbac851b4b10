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

/** Serializes a channel's writes. */
export class Outbox {
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly transport: Transport,
    private readonly framing: Framing,
    private readonly codec: Codec,
  ) {}

  /**
   * Encodes and frames one message, without writing anything.
   * @throws {CodecError} if the message has no form in the codec.
   * @throws {FramingError} if the frame breaks the framing's limits.
   */
  encode(message: unknown): Uint8Array {
    return this.framing.encode(this.codec.encode(message));
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
          ? { code: ErrorCodes.MessageTooLarge, message: `result too large to send: ${error.message}` }
          : { code: ErrorCodes.InternalError, message: `result cannot be sent: ${describeError(error)}`, data: { type: "CodecError" } };
      return this.errorFrame(protocol, id, wire);
    }
  }

  /** Frames an error response; `data` the codec cannot carry is dropped (and said so in the message). */
  errorFrame(protocol: JsonRpcProtocol, id: RequestId | null, error: WireError): Uint8Array | IpcError {
    try {
      return this.encode(protocol.errorResponse(id, error.code, error.message, error.data));
    } catch (problem) {
      try {
        return this.encode(protocol.errorResponse(id, error.code, `${error.message} (error data dropped: ${describeError(problem)})`));
      } catch (fatal) {
        return fatal instanceof IpcError ? fatal : new IpcError(describeError(fatal), { cause: fatal });
      }
    }
  }

  /** Queues one frame; resolves once the transport accepted it. */
  write(frame: Uint8Array): Promise<void> {
    const written = this.tail.then(() => this.transport.write(frame));
    this.tail = written.catch(() => undefined);
    return written;
  }

  /** Resolves once every frame queued so far was handed to the transport. */
  idle(): Promise<void> {
    return this.tail;
  }
}
