/**
 * A codec as the channel uses it: `decodeMessage` gives, beside the value, what the value cannot
 * show (a float `id`, the stream members written as floats). It is internal, so not in the public
 * types the tests compile against.
 */
import type { Codec } from "@aspect-ipc/worker";

export type DecodingCodec = Codec & { decodeMessage(bytes: Uint8Array): { value: unknown; floatId: boolean; floatMembers: number } };

/** `codec`, seen with its internal `decodeMessage`. */
export function decoding(codec: Codec): DecodingCodec {
  return codec as DecodingCodec;
}
