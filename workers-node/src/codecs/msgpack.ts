/**
 * MessagePack for the data channel (PROTOCOL.md section 3.2).
 *
 * The mapping is exactly the spec's, and this SDK's own code implements it (msgpack-encode.ts,
 * msgpack-decode.ts), so that each message is checked and converted in one pass each way, with one
 * copy of a binary payload when sending (none for one of 64 KiB or more in a frame: it is written
 * from the caller's memory) and none when receiving:
 * - integers: the shortest int format; integers beyond ±(2^53 - 1) decode to `bigint` and `bigint`
 *   encodes to int 64 / uint 64, while every safe integer stays a `number` both ways;
 * - non-integral numbers are float 64, never float 32; float 32 is accepted and widened;
 * - binary is `Uint8Array` both ways, written as bin; a received bin is a view of the frame;
 * - ext types (timestamps included), non-string map keys, invalid UTF-8 and trailing bytes are
 *   codec errors.
 *
 * Hooks (types.ts) extend the mapping locally, nothing new goes on the wire: the encode hook turns
 * what MessagePack cannot carry into what it can, the decode hook turns decoded maps back.
 */
import { CodecError, describeError } from "../errors.js";
import { checkHooks } from "./hooks.js";
import { DecodeHookFailure, MessagePackDecodeError, StringTooLong, decodeMessagePackEnvelope } from "./msgpack-decode.js";
import { MessagePackEncoder } from "./msgpack-encode.js";
import type { Codec, CodecOptions, DecodeHook, DecodedMessage } from "./types.js";

const MISMATCH_HINT = "do both sides use MessagePackCodec?";

/** The data channel's codec. */
export class MessagePackCodec implements Codec {
  readonly name = "MessagePack";

  private readonly encoder: MessagePackEncoder;
  private readonly decodeHook: DecodeHook | undefined;

  /**
   * @param options `encodeHook` replaces values MessagePack cannot carry, `decodeHook` each
   *   decoded map (types.ts says how); both optional. A hook must not call this codec's `encode`.
   */
  constructor(options: CodecOptions = {}) {
    checkHooks(options, "MessagePackCodec");
    this.encoder = new MessagePackEncoder(options.encodeHook);
    this.decodeHook = options.decodeHook;
  }

  encode(value: unknown): Uint8Array {
    return this.encoder.encode(value, 0);
  }

  /**
   * @internal The encoding after `room` unused bytes, for a frame header written in place; large
   * binaries come back as parts of their own, not copied (MessagePackEncoder.encodeParts).
   */
  encodeWithRoom(value: unknown, room: number): Uint8Array | Uint8Array[] {
    return this.encoder.encodeParts(value, room);
  }

  /** @internal `encoded` (from encodeWithRoom) was written: its memory may serve a later message. */
  release(encoded: Uint8Array): void {
    this.encoder.release(encoded);
  }

  decode(input: Uint8Array): unknown {
    return this.decodeMessage(input).value;
  }

  /** @internal Decodes a message, telling whether its `id` (D6), `params.protocol` (D14) and its watched members (float-members.ts) were floats. */
  decodeMessage(input: Uint8Array): DecodedMessage {
    // A plain view of the same memory: binary values are views of it, and they must arrive as
    // Uint8Array, not as the Buffer subclass Node's streams hand out.
    const bytes = Object.getPrototypeOf(input) === Uint8Array.prototype ? input : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    try {
      return decodeMessagePackEnvelope(bytes, this.decodeHook);
    } catch (error) {
      if (error instanceof DecodeHookFailure) {
        const codecError = new CodecError(error.message, { cause: error.cause, path: error.path });
        recovered(codecError, error);
        throw codecError;
      }
      if (error instanceof StringTooLong) {
        // Well-formed MessagePack that this side cannot hold: no hint about codecs.
        const codecError = new CodecError(error.message);
        recovered(codecError, error);
        throw codecError;
      }
      if (error instanceof MessagePackDecodeError) {
        const codecError = new CodecError(`frame is not valid MessagePack (${error.message}): ${MISMATCH_HINT}`);
        recovered(codecError, error);
        throw codecError;
      }
      // RangeError from a stack exhausted by a caller that was already deep: still the frame's fault.
      throw new CodecError(`frame is not valid MessagePack (${describeError(error)}): ${MISMATCH_HINT}`, { cause: error });
    }
  }
}

/** Copies the ids the decoder recovered (PROTOCOL.md 4.8) onto the error the channel sees. */
function recovered(codecError: CodecError, error: MessagePackDecodeError): void {
  const ids = error as { recoveredId?: string | number | bigint; answerId?: string | number | bigint };
  codecError.recoveredId = ids.recoveredId;
  codecError.answerId = ids.answerId;
}
