/**
 * Every way a peer that keeps the kind of its numbers writes an integral float: MessagePack float 64
 * and float 32 on data, `7.0`, `7e0` and `7.0` among spaces on control, at a slot of a message.
 */
import assert from "node:assert/strict";

import { MessagePackCodec } from "@aspect-ipc/worker";

import { taggedJson, taggedMessagePack } from "./tagged-wire.js";

/** Stands in a message for the member under test, then is replaced by the float's own bytes. */
export const SLOT = "FLOAT_SLOT";

const scalars = new MessagePackCodec();

/** `bytes` with the first occurrence of `from` replaced by `to`. */
export function splice(bytes: Uint8Array, from: Uint8Array, to: Uint8Array): Uint8Array {
  const at = Buffer.from(bytes).indexOf(from);
  assert.ok(at >= 0, "the slot is in the message");
  return Buffer.concat([bytes.subarray(0, at), to, bytes.subarray(at + from.length)]);
}

export function float64(value: number): Uint8Array {
  const bytes = Buffer.alloc(9);
  bytes[0] = 0xcb;
  bytes.writeDoubleBE(value, 1);
  return bytes;
}

export function float32(value: number): Uint8Array {
  const bytes = Buffer.alloc(5);
  bytes[0] = 0xca;
  bytes.writeFloatBE(value, 1);
  return bytes;
}

/** Every way a peer writes the integral float `n` where SLOT is in the tagged `message`: each channel, each float form (one frame's payload). */
export function floatForms(message: unknown, n: number): Array<{ form: string; channel: "data" | "control"; bytes: Uint8Array }> {
  const msgpack = taggedMessagePack(message);
  const slot = scalars.encode(SLOT);
  const json = Buffer.from(taggedJson(message) as string);
  const jsonSlot = Buffer.from(JSON.stringify(SLOT));
  const memberSlot = Buffer.from(`:${JSON.stringify(SLOT)}`);
  return [
    { form: "MessagePack float 64", channel: "data", bytes: splice(msgpack, slot, float64(n)) },
    { form: "MessagePack float 32", channel: "data", bytes: splice(msgpack, slot, float32(n)) },
    { form: `JSON ${n}.0`, channel: "control", bytes: splice(json, jsonSlot, Buffer.from(`${n}.0`)) },
    { form: `JSON ${n}e0`, channel: "control", bytes: splice(json, jsonSlot, Buffer.from(`${n}e0`)) },
    { form: `JSON ${n}.0 among spaces`, channel: "control", bytes: splice(json, memberSlot, Buffer.from(` :\n\t${n}.0 `)) },
  ];
}
