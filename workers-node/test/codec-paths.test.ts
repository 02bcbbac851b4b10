/**
 * A refused value is named by its place in the message and comes with what to do (decision S3):
 * `cannot encode a Date at $.params.rows[3].when as MessagePack: convert it first (...) or pass an
 * encodeHook to MessagePackCodec`, and `CodecError.path` holds the place.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { CodecError, JsonCodec, MessagePackCodec } from "@aspect-ipc/worker";

const msgpack = new MessagePackCodec();
const json = new JsonCodec();

function refusal(codec: MessagePackCodec | JsonCodec, value: unknown): CodecError {
  try {
    codec.encode(value);
  } catch (error) {
    assert.ok(error instanceof CodecError, `expected a CodecError, got ${String(error)}`);
    return error;
  }
  assert.fail("the value was encoded");
}

test("the path runs from the envelope, JSONPath style; keys that are not identifiers are quoted", () => {
  const rows = [{}, {}, {}, { when: new Date(0) }];
  const error = refusal(msgpack, { jsonrpc: "2.0", id: 1, method: "m", params: { rows } });
  assert.equal(error.path, "$.params.rows[3].when");
  assert.equal(
    error.message,
    "cannot encode a Date at $.params.rows[3].when as MessagePack: convert it first " +
      "(a Date to an ISO string, date.toISOString(), or to a number, date.getTime()) or pass an encodeHook to MessagePackCodec",
  );
  assert.equal(refusal(json, { params: { "a b": { "1x": [new Date(0)] } } }).path, '$.params["a b"]["1x"][0]');
  assert.match(refusal(json, { params: { when: new Date(0) } }).message, /or pass an encodeHook to JsonCodec$/);
  assert.equal(refusal(msgpack, new Map()).path, "$");
});

test("advice per type, on both codecs", () => {
  const cases: Array<[unknown, RegExp, RegExp]> = [
    [new Map([["a", 1]]), /a Map at \$\.v as MessagePack: convert it first \(a Map to a plain object with string keys: Object\.fromEntries\(map\)\)/, /a Map at \$\.v as JSON/],
    [new Set([1]), /a Set at \$\.v .*\(a Set to an array: Array\.from\(set\)\)/, /Array\.from\(set\)/],
    [
      new Float64Array(3),
      /a Float64Array of 3 elements at \$\.v .*new Uint8Array\(a\.buffer, a\.byteOffset, a\.byteLength\); for an array with a dtype and shape see the ndarray recipe in docs\/codec-hooks\.md/,
      /a Float64Array of 3 elements at \$\.v as JSON: convert it first \(a typed array to an array: Array\.from\(array\)\)/,
    ],
    [new ArrayBuffer(4), /an ArrayBuffer at \$\.v .*new Uint8Array\(buffer\)/, /an ArrayBuffer at \$\.v as JSON/],
    [new (class Point {})(), /a Point at \$\.v .*an instance to a plain object: \{ \.\.\.value \}/, /a Point at \$\.v as JSON/],
    [new TypeError("x"), /a TypeError at \$\.v .*\{ name: error\.name, message: error\.message \}/, /a TypeError/],
    [Symbol("s"), /a symbol at \$\.v .*symbol\.description/, /a symbol at \$\.v as JSON/],
    [() => 1, /a function \(anonymous\) at \$\.v as MessagePack: functions cannot be sent: send the data it computes, or pass an encodeHook/, /a function/],
    [2n ** 64n, /the integer 18446744073709551616 at \$\.v as MessagePack: outside \[-2\^63, 2\^64 - 1\].*send it as a string, value\.toString\(\)/, /outside \[-2\^63/],
  ];
  for (const [value, forMsgpack, forJson] of cases) {
    const fromMsgpack = refusal(msgpack, { v: value });
    assert.match(fromMsgpack.message, forMsgpack);
    assert.equal(fromMsgpack.path, "$.v");
    const fromJson = refusal(json, { v: value });
    assert.match(fromJson.message, forJson);
    assert.equal(fromJson.path, "$.v");
  }
});

test("every refusal on the data channel's own checks carries its path too (surrogates, undefined in arrays, depth)", () => {
  assert.equal(refusal(msgpack, { params: { text: "\ud800" } }).path, "$.params.text");
  assert.equal(refusal(msgpack, { params: [1, undefined] }).path, "$.params[1]");
  assert.equal(refusal(json, { x: Number.NaN }).path, "$.x");
  assert.equal(refusal(msgpack, undefined).path, "$");
});

test("decode errors keep their messages and have no path", () => {
  const error = (() => {
    try {
      msgpack.decode(new Uint8Array([0xc1]));
    } catch (caught) {
      return caught as CodecError;
    }
    return assert.fail("decoded");
  })();
  assert.ok(error instanceof CodecError);
  assert.match(error.message, /^frame is not valid MessagePack \(byte 0xc1 at offset 0 is never used in MessagePack\)/);
  assert.equal(error.path, undefined);
});
