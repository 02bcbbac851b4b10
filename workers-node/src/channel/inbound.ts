/**
 * What a channel reads, before it is processed: decoded and classified messages, parse errors and
 * framing errors, in stream order (PROTOCOL.md 1.5, 2.5, 4.2, 4.8).
 */
import { FloatMember } from "../codecs/float-members.js";
import type { Codec } from "../codecs/types.js";
import { ErrorCodes, type CodecError, type FramingError } from "../errors.js";
import type { ClassifiedMessage } from "../jsonrpc/messages.js";
import type { JsonRpcProtocol } from "../jsonrpc/protocol.js";
import type { WireError } from "./handlers.js";

/** One inbound item, in stream order. */
export type InboundItem =
  | {
      readonly kind: "message";
      readonly message: ClassifiedMessage;
      readonly floatProtocol?: boolean;
      /** Which watched members were floats on the wire, which the message cannot show: bits of `FloatMember`. */
      readonly floatMembers: number;
      /** The size of its frame or line, as received (what a queued notification counts: 4.5). */
      readonly size: number;
    }
  | { readonly kind: "parse_error"; readonly error: CodecError }
  | { readonly kind: "framing_error"; readonly error: FramingError };

/** @internal Decides what happens to an inbound item before normal processing: true lets it through. */
export type InboundFilter = (item: InboundItem) => boolean | Promise<boolean>;

/**
 * Decodes and classifies one frame; a float `id` (which the value cannot show) is never an id (D6),
 * nor a float `error.code` a code (an invalid response, 4.2), and the floats among its other
 * watched members go with it to the dispatcher and the stream layer (float-members.ts).
 */
export function decodeFrame(codec: Codec, protocol: JsonRpcProtocol, frame: Uint8Array): InboundItem {
  try {
    if (codec.decodeMessage !== undefined) {
      const { value, floatId, floatProtocol, floatMembers } = codec.decodeMessage(frame);
      const floatErrorCode = (floatMembers & FloatMember.errorCode) !== 0;
      return { kind: "message", message: protocol.classify(value, { floatId, floatErrorCode }), floatProtocol: floatProtocol === true, floatMembers, size: frame.byteLength };
    }
    // A codec of the user's own: its values are all there is to go by.
    return { kind: "message", message: protocol.classify(codec.decode(frame)), floatMembers: 0, size: frame.byteLength };
  } catch (error) {
    return { kind: "parse_error", error: error as CodecError };
  }
}

/** The `-32005` for a frame or line over the limit: exact numbers in the message and in `data` (D17). */
export function sizeError(error: FramingError): WireError {
  const data = error.size === undefined ? { limit: error.limit } : { size: error.size, limit: error.limit };
  return { code: ErrorCodes.MessageTooLarge, message: error.message, data };
}
