/**
 * A float where a stream needs an integer (PROTOCOL.md 3.1, 3.2, 13.1, 13.2), from the bytes: a
 * stream's `window`, and `stream`, `seq`, `add` and an error's `code` in the `$/stream/*`
 * notifications, written as MessagePack float 64 or float 32 on data and as a float token (`4.0`,
 * `4e0`) on control, decoded by the channel's codec and judged by the stream layer with what the
 * decoder noted. Such a member gets the verdict any other wrong type gets there; a float anywhere
 * else is the number it was.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { JsonCodec, MessagePackCodec, parseOpening, parseStreamMessage, type Opening, type StreamMessage } from "@aspect-ipc/worker";

import { decoding, type DecodingCodec } from "./helpers/decoding.js";
import { SLOT, float64, floatForms as writtenForms } from "./helpers/float-forms.js";
import { taggedJson, taggedMessagePack } from "./helpers/tagged-wire.js";

type Message = Record<string, unknown>;

const data = decoding(new MessagePackCodec());
const control = decoding(new JsonCodec());

/** The stream layer's verdict on a message as received: decoded by `codec`, told what its decoder noted. */
function verdict(codec: DecodingCodec, bytes: Uint8Array): Opening | StreamMessage {
  const { value, floatMembers } = codec.decodeMessage(bytes);
  const message = value as Message;
  return "id" in message ? parseOpening(message.params, floatMembers) : parseStreamMessage(message.method as string, message.params, floatMembers);
}

/** Every way a peer writes the integral float `n` where SLOT is, with the codec of its channel. */
function floatForms(message: Message, n: number): Array<{ form: string; codec: DecodingCodec; bytes: Uint8Array }> {
  return writtenForms(message, n).map(({ form, channel, bytes }) => ({ form, codec: channel === "data" ? data : control, bytes }));
}

/** The message written with `value` where SLOT is, on `codec`'s channel. */
function written(codec: DecodingCodec, message: (value: unknown) => Message, value: unknown): Uint8Array {
  return codec === data ? taggedMessagePack(message(value)) : Buffer.from(taggedJson(message(value)) as string);
}

const MEMBERS: Array<{ member: string; message: (value: unknown) => Message; integer: number; wrongType: unknown }> = [
  {
    member: "window",
    message: (window) => ({ jsonrpc: "2.0", id: 13, method: "countTo", params: { n: 3, size: 0, "$/stream": { out: { window } } } }),
    integer: 4,
    wrongType: "4",
  },
  { member: "item stream", message: (stream) => ({ jsonrpc: "2.0", method: "$/stream/item", params: { stream, dir: "out", seq: 0, value: 0 } }), integer: 7, wrongType: true },
  { member: "end stream", message: (stream) => ({ jsonrpc: "2.0", method: "$/stream/end", params: { stream, dir: "in" } }), integer: 7, wrongType: null },
  { member: "seq", message: (seq) => ({ jsonrpc: "2.0", method: "$/stream/item", params: { stream: 7, dir: "out", seq, value: 0 } }), integer: 0, wrongType: "0" },
  { member: "add", message: (add) => ({ jsonrpc: "2.0", method: "$/stream/credit", params: { stream: 7, dir: "out", add } }), integer: 1, wrongType: "1" },
  {
    member: "error code",
    message: (code) => ({ jsonrpc: "2.0", method: "$/stream/error", params: { stream: 8, dir: "in", error: { code, message: "m" } } }),
    integer: -32000,
    wrongType: "-32000",
  },
];

test("an integral float at a stream member gets the verdict of any other wrong type there, on both channels, in every float form", () => {
  for (const { member, message, integer, wrongType } of MEMBERS) {
    for (const { form, codec, bytes } of floatForms(message(SLOT), integer)) {
      const asWrongType = verdict(codec, written(codec, message, wrongType));
      assert.notDeepEqual(verdict(codec, written(codec, message, integer)), asWrongType, `${member}: the integer ${integer} is accepted`);
      assert.deepEqual(verdict(codec, bytes), asWrongType, `${member} as ${form}`);
    }
  }
});

test("the float is noted wherever the method is: params before method", () => {
  const credit = { jsonrpc: "2.0", params: { add: { $float: 1 }, dir: "out", stream: 7 }, method: "$/stream/credit" };
  for (const [codec, bytes] of [
    [data, taggedMessagePack(credit)],
    [control, Buffer.from(taggedJson(credit) as string)],
  ] as const) {
    assert.equal(verdict(codec, bytes).kind, "malformed");
  }
  const opening = { params: { "$/stream": { out: { window: { $float: 4 } } } }, method: "countTo", id: 1, jsonrpc: "2.0" };
  assert.equal(verdict(data, taggedMessagePack(opening)).kind, "invalid_open");
  assert.equal(verdict(control, Buffer.from(taggedJson(opening) as string)).kind, "invalid_open");
});

test("a repeated member is judged by its last occurrence, as its value is", () => {
  const line = (adds: string): Uint8Array => Buffer.from(`{"jsonrpc":"2.0","method":"$/stream/credit","params":{"stream":7,"dir":"out",${adds}}}`);
  assert.deepEqual(verdict(control, line(`"add":1.0,"add":1`)), { kind: "credit", stream: 7, dir: "out", add: 1 });
  assert.equal(verdict(control, line(`"add":1,"add":1.0`)).kind, "malformed");
  const windows = (first: string, second: string): Uint8Array =>
    Buffer.from(`{"jsonrpc":"2.0","id":1,"method":"countTo","params":{"$/stream":{"out":{"window":${first}}},"$/stream":{"out":{"window":${second}}}}}`);
  assert.equal(verdict(control, windows("4.0", "4")).kind, "open");
  assert.equal(verdict(control, windows("4", "4.0")).kind, "invalid_open");
  // MessagePack: the same two credits, the add written 1.0 then 1, and 1 then 1.0 (map of 4: add twice).
  const head = Buffer.concat([Buffer.from([0x83]), data.encode("jsonrpc"), data.encode("2.0"), data.encode("method"), data.encode("$/stream/credit"), data.encode("params")]);
  const params = (first: Uint8Array, second: Uint8Array): Uint8Array =>
    Buffer.concat([head, Buffer.from([0x84]), data.encode("stream"), data.encode(7), data.encode("dir"), data.encode("out"), data.encode("add"), first, data.encode("add"), second]);
  assert.deepEqual(verdict(data, params(float64(1), data.encode(1))), { kind: "credit", stream: 7, dir: "out", add: 1 });
  assert.equal(verdict(data, params(data.encode(1), float64(1))).kind, "malformed");
});

test("an escaped key is the member it spells: \\u0061dd is add", () => {
  const line = Buffer.from(`{"jsonrpc":"2.0","method":"$/stream/credit","params":{"stream":7,"dir":"out","\\u0061dd":1.0}}`);
  assert.equal(verdict(control, line).kind, "malformed");
});

test("with a decode hook, the floats the decoder noted still reach the stream layer", () => {
  const identity = (map: Record<string, unknown>): unknown => map;
  const credit = { jsonrpc: "2.0", method: "$/stream/credit", params: { stream: 7, dir: "out", add: { $float: 1 } } };
  const hookedData = decoding(new MessagePackCodec({ decodeHook: identity }));
  const hookedControl = decoding(new JsonCodec({ decodeHook: identity }));
  assert.equal(verdict(hookedData, taggedMessagePack(credit)).kind, "malformed");
  assert.equal(verdict(hookedControl, Buffer.from(taggedJson(credit) as string)).kind, "malformed");
});

test("a float anywhere else is the number it was: an item's value, a handler's params, the same names deeper down", () => {
  // A guard: these pass with or without the stream members noted, and must go on passing.
  const deep = { stream: { $float: 7 }, seq: { $float: 1 }, add: { $float: 2 }, "$/stream": { out: { window: { $float: 4 } } } };
  const item = { jsonrpc: "2.0", method: "$/stream/item", params: { stream: 7, dir: "out", seq: 0, value: { n: { $float: 4 }, deep } } };
  const plain = { jsonrpc: "2.0", id: 3, method: "add", params: { a: { $float: 4 }, stream: { $float: 7 }, seq: { $float: 0 }, add: { $float: 1 }, window: { $float: 4 } } };
  const opening = { jsonrpc: "2.0", id: 4, method: "countTo", params: { n: { $float: 3 }, size: 0, window: { $float: 4 }, "$/stream": { out: { window: 4 } } } };
  const expectedDeep = { stream: 7, seq: 1, add: 2, "$/stream": { out: { window: 4 } } };
  for (const [codec, write] of [
    [data, taggedMessagePack],
    [control, (message: unknown) => Buffer.from(taggedJson(message) as string)],
  ] as const) {
    assert.deepEqual(verdict(codec, write(item)), { kind: "item", stream: 7, dir: "out", seq: 0, value: { n: 4, deep: expectedDeep } });
    assert.deepEqual(verdict(codec, write(plain)), { kind: "not_stream" });
    assert.deepEqual((codec.decodeMessage(write(plain)).value as Message).params, { a: 4, stream: 7, seq: 0, add: 1, window: 4 });
    assert.deepEqual(verdict(codec, write(opening)), { kind: "open", params: { n: 3, size: 0, window: 4 }, out: { window: 4 } });
  }
});
