/**
 * Tagged vector values (spec/vectors/README.md) written as the bytes a peer that keeps the kind of
 * its numbers sends: a `{"$float": 4.0}` is MessagePack float 64 (`cb4010000000000000`) and the
 * JSON token `4.0`, never the integer that the SDK's own encoders write for the number 4. What
 * these bytes decode to, and what the decoders note about them, is then the SDK's.
 */
import { MessagePackCodec } from "@aspect-ipc/worker";

import { untag } from "./vectors.js";

/** Writes the scalars that have one form (null, booleans, integers, strings, binary). */
const scalars = new MessagePackCodec();

function isTag(map: Record<string, unknown>, tag: string): boolean {
  const keys = Object.keys(map);
  return keys.length === 1 && keys[0] === tag;
}

/** A container header: `fix` (the fix format's first byte) for up to 15 items, else the 16- or 32-bit form at `wide`. */
function header(count: number, fix: number, wide: number): Uint8Array {
  if (count <= 15) return Uint8Array.of(fix + count);
  if (count <= 0xffff) return Uint8Array.of(wide, count >> 8, count & 0xff);
  const bytes = new Uint8Array(5);
  bytes[0] = wide + 1;
  new DataView(bytes.buffer).setUint32(1, count);
  return bytes;
}

function float64(value: number): Uint8Array {
  const bytes = new Uint8Array(9);
  bytes[0] = 0xcb;
  new DataView(bytes.buffer).setFloat64(1, value);
  return bytes;
}

/** A tagged value as MessagePack, every `$float` as float 64, map members in the file's order. */
export function taggedMessagePack(value: unknown): Uint8Array {
  if (Array.isArray(value)) return Buffer.concat([header(value.length, 0x90, 0xdc), ...value.map(taggedMessagePack)]);
  if (value !== null && typeof value === "object") {
    const map = value as Record<string, unknown>;
    if (isTag(map, "$float")) return float64(untag(map) as number);
    if (isTag(map, "$int") || isTag(map, "$bin")) return scalars.encode(untag(map));
    const keys = Object.keys(map);
    return Buffer.concat([header(keys.length, 0x80, 0xde), ...keys.flatMap((key) => [scalars.encode(key), taggedMessagePack(map[key])])]);
  }
  return scalars.encode(value);
}

/**
 * A tagged value as JSON text, every `$float` a float token (`4.0`, `-0.0`, `1e+300`), or null when
 * it has no JSON form (binary, NaN, ±Infinity).
 */
export function taggedJson(value: unknown): string | null {
  if (Array.isArray(value)) {
    const items = value.map(taggedJson);
    return items.includes(null) ? null : `[${items.join(",")}]`;
  }
  if (value !== null && typeof value === "object") {
    const map = value as Record<string, unknown>;
    if (isTag(map, "$bin")) return null;
    if (isTag(map, "$int")) return String(map.$int);
    if (isTag(map, "$float")) {
      const float = untag(map) as number;
      if (!Number.isFinite(float)) return null;
      const text = Object.is(float, -0) ? "-0.0" : String(float);
      return /[.eE]/.test(text) ? text : `${text}.0`;
    }
    const members = Object.keys(map).map((key) => {
      const item = taggedJson(map[key]);
      return item === null ? null : `${JSON.stringify(key)}:${item}`;
    });
    return members.includes(null) ? null : `{${members.join(",")}}`;
  }
  return JSON.stringify(value);
}

/** The channels a peer writes tagged messages on, and how: one frame's payload, or null when the message has no form there (binary on control). */
export const TAGGED_CHANNELS: ReadonlyArray<{ readonly name: "data" | "control"; write(message: unknown): Uint8Array | null }> = [
  { name: "data", write: taggedMessagePack },
  {
    name: "control",
    write: (message) => {
      const text = taggedJson(message);
      return text === null ? null : new TextEncoder().encode(text);
    },
  },
];
