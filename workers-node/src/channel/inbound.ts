/**
 * What a channel reads, before it is processed: decoded and classified messages, parse errors and
 * framing errors, in stream order (PROTOCOL.md 1.5, 2.5, 4.2, 4.8).
 */
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
      /** The size of its frame or line, as received (what a queued notification counts: 4.5). */
      readonly size: number;
    }
  | { readonly kind: "parse_error"; readonly error: CodecError }
  | { readonly kind: "framing_error"; readonly error: FramingError };

/** @internal Decides what happens to an inbound item before normal processing: true lets it through. */
export type InboundFilter = (item: InboundItem) => boolean | Promise<boolean>;

/** Decodes and classifies one frame; a float `id` (which the value cannot show) is never an id (D6). */
export function decodeFrame(codec: Codec, protocol: JsonRpcProtocol, frame: Uint8Array): InboundItem {
  try {
    if (codec.decodeMessage !== undefined) {
      const { value, floatId, floatProtocol } = codec.decodeMessage(frame);
      return { kind: "message", message: protocol.classify(value, { floatId }), floatProtocol: floatProtocol === true, size: frame.byteLength };
    }
    return { kind: "message", message: protocol.classify(codec.decode(frame)), size: frame.byteLength };
  } catch (error) {
    return { kind: "parse_error", error: error as CodecError };
  }
}

/** The `-32005` for a frame or line over the limit: exact numbers in the message and in `data` (D17). */
export function sizeError(error: FramingError): WireError {
  const data = error.size === undefined ? { limit: error.limit } : { size: error.size, limit: error.limit };
  return { code: ErrorCodes.MessageTooLarge, message: error.message, data };
}
