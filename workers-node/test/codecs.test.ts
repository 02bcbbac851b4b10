/**
 * Codec behaviour beyond the shared vectors: what JavaScript values map to, and every value that
 * must be refused on the sending side.
 */
import assert from "node:assert/strict";
import { constants } from "node:buffer";
import { test } from "node:test";

import { CodecError, JsonCodec, MessagePackCodec } from "@aspect-ipc/worker";

import { fromHex, toHex } from "./helpers/vectors.js";

const msgpack = new MessagePackCodec();
const json = new JsonCodec();
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

test("MessagePack integers: safe integers stay numbers both ways, bigints only beyond 2^53", () => {
  assert.equal(toHex(msgpack.encode(2 ** 40)), "cf0000010000000000");
  assert.equal(toHex(msgpack.encode(-(2 ** 40))), "d3ffffff0000000000");
  assert.equal(toHex(msgpack.encode(5n)), "05", "a small bigint takes the shortest form");
  assert.equal(toHex(msgpack.encode(-(2n ** 63n))), "d38000000000000000");
  assert.equal(msgpack.decode(fromHex("cf0000010000000000")), 2 ** 40);
  assert.equal(msgpack.decode(fromHex("d3ffffffffffffff00")), -256);
  assert.equal(msgpack.decode(fromHex("cf0020000000000000")), 2n ** 53n);
  assert.deepEqual(msgpack.decode(fromHex("92cf0000000000000001cf0040000000000000")), [1, 2n ** 54n]);
  assert.deepEqual(msgpack.decode(msgpack.encode({ t: 1_700_000_000_000, b: [2n ** 60n] })), { t: 1_700_000_000_000, b: [2n ** 60n] });
});

test("MessagePack floats are float 64, never float 32; NaN and Infinity are allowed", () => {
  assert.equal(toHex(msgpack.encode(0.1)), "cb3fb999999999999a");
  assert.equal(toHex(msgpack.encode(1e300)), "cb7e37e43c8800759c");
  assert.equal(toHex(msgpack.encode(2 ** 53)), "cb4340000000000000", "beyond the safe range a number is a float");
  assert.ok(Number.isNaN(msgpack.decode(msgpack.encode(Number.NaN))));
  assert.equal(msgpack.decode(msgpack.encode(-Infinity)), -Infinity);
});

test("MessagePack binary: Uint8Array and Buffer are written as bin and read back as Uint8Array", () => {
  assert.equal(toHex(msgpack.encode(Buffer.from([1, 2]))), "c4020102");
  const decoded = msgpack.decode(Buffer.from("c4020102", "hex"));
  assert.equal(Object.getPrototypeOf(decoded), Uint8Array.prototype);
  assert.deepEqual(decoded, new Uint8Array([1, 2]));
});

test("undefined object members are omitted by both codecs, like JSON.stringify does", () => {
  assert.equal(toHex(msgpack.encode({ a: 1, b: undefined })), "81a16101");
  assert.equal(text(json.encode({ a: 1, b: undefined })), '{"a":1}');
});

test("unrepresentable values are refused before anything is encoded, naming the type and the place", () => {
  class Point {
    constructor(readonly x: number) {}
  }
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  const cases: Array<[unknown, RegExp]> = [
    [new Date(0), /a Date at \$/],
    [{ when: new Map() }, /a Map at \$\.when/],
    [[1, new Set([1])], /a Set at \$\[1\]/],
    [{ p: new Point(1) }, /a Point at \$\.p/],
    [{ f: () => 1 }, /a function/],
    [[Symbol("s")], /a symbol at \$\[0\]/],
    [[1, undefined], /undefined inside an array at \$\[1\]/],
    [undefined, /undefined/],
    [circular, /circular reference at \$\.self/],
    [new Float64Array(2), /a Float64Array/],
    [new ArrayBuffer(2), /an? ArrayBuffer/],
    [2n ** 64n, /outside \[-2\^63, 2\^64 - 1\]/],
    [{ "odd key": "\ud800" }, /lone UTF-16 surrogate at \$\["odd key"\]/],
  ];
  for (const [value, message] of cases) {
    assert.throws(() => msgpack.encode(value), (error: unknown) => error instanceof CodecError && message.test(error.message), String(message));
    assert.throws(() => json.encode(value), CodecError, String(message));
  }
});

test("JSON refuses what it cannot write exactly: NaN, Infinity, binary, integers outside [-2^63, 2^64 - 1]", () => {
  assert.throws(() => json.encode([Number.NaN]), /cannot encode NaN at \$\[0\] as JSON: not representable in JSON/);
  assert.throws(() => json.encode({ x: Infinity }), /Infinity/);
  assert.throws(() => json.encode({ data: new Uint8Array(3) }), /binary data \(Uint8Array of 3 bytes\) at \$\.data as JSON: binary has no JSON form; send it on the data channel/);
  assert.throws(() => json.encode(2n ** 64n), /outside \[-2\^63, 2\^64 - 1\]/);
  assert.throws(() => json.encode([-(2n ** 63n) - 1n]), CodecError);
  assert.equal(text(json.encode({ n: 12n })), '{"n":12}', "a bigint within the safe range is written as a number");
});

test("JSON writes integers exactly (D9): bigints and integral numbers as their digits, -0 as -0.0", () => {
  assert.equal(text(json.encode([2n ** 64n - 1n, -(2n ** 63n), 2n ** 53n + 1n])), "[18446744073709551615,-9223372036854775808,9007199254740993]");
  assert.equal(text(json.encode({ a: 2 ** 63, b: -(2 ** 63), c: 2 ** 53 })), '{"a":9223372036854775808,"b":-9223372036854775808,"c":9007199254740992}');
  assert.equal(text(json.encode([-0, 0, 1.5])), "[-0.0,0,1.5]");
  // Integral but outside the integer range: a float token, never rounded digits.
  assert.equal(text(json.encode([2 ** 64, 1e21])), "[1.8446744073709552e+19,1e+21]");
  const decoded = json.decode(json.encode([-0, 2n ** 64n - 1n])) as unknown[];
  assert.ok(Object.is(decoded[0], -0));
  assert.equal(decoded[1], 2n ** 64n - 1n);
});

test("JSON decodes integers exactly (D9) and keeps -0.0, on the fast path and off it", () => {
  assert.deepEqual(json.decode(new TextEncoder().encode("[18446744073709551615,-9223372036854775808,9007199254740993,12]")), [
    2n ** 64n - 1n,
    -(2n ** 63n),
    2n ** 53n + 1n,
    12,
  ]);
  assert.ok(Object.is((json.decode(new TextEncoder().encode("[-0.0]")) as unknown[])[0], -0));
  assert.ok(Object.is((json.decode(new TextEncoder().encode("[-0]")) as unknown[])[0], 0), "-0 is the integer 0");
  assert.throws(() => json.decode(new TextEncoder().encode("[18446744073709551616]")), CodecError);
  const proto = json.decode(new TextEncoder().encode('{"__proto__":1,"a":2}')) as Record<string, unknown>;
  assert.deepEqual(Object.keys(proto), ["__proto__", "a"]);
  assert.equal(Object.getPrototypeOf(proto), Object.prototype, "the prototype is untouched");
  assert.equal(text(json.encode(proto)), '{"__proto__":1,"a":2}');
});

test("nesting: 512 levels round-trip in both codecs; deeper than the guard is a codec error", () => {
  let deep: unknown = 1;
  for (let level = 0; level < 512; level++) deep = [deep];
  assert.deepEqual(msgpack.decode(msgpack.encode(deep)), deep);
  assert.deepEqual(json.decode(json.encode(deep)), deep);
  let tooDeep: unknown = 1;
  for (let level = 0; level < 2000; level++) tooDeep = [tooDeep];
  assert.throws(() => msgpack.encode(tooDeep), /nesting deeper than/);
  assert.throws(() => msgpack.decode(new Uint8Array([...new Array<number>(2000).fill(0x91), 0x01])), /nesting deeper than/);
});

test("MessagePack decoding refuses lies and foreign types without trusting declared sizes", () => {
  const cases: Array<[string, RegExp]> = [
    ["dfffffffff", /truncated map/],
    ["c6ffffffff00", /truncated bin/],
    ["c7010500", /ext type/],
    ["81a17a", /truncated object/],
    ["81c30a", /map key .* is not a string/],
    ["a1ff", /not valid UTF-8/],
  ];
  for (const [hex, message] of cases) {
    assert.throws(() => msgpack.decode(fromHex(hex)), (error: unknown) => error instanceof CodecError && message.test(error.message), hex);
  }
});

test("JSON decoding: strict UTF-8, exactly one value, no byte-order mark", () => {
  assert.throws(() => json.decode(fromHex("efbbbf7b7d")), CodecError);
  assert.throws(() => json.decode(new TextEncoder().encode("[1] [2]")), CodecError);
  assert.deepEqual(json.decode(new TextEncoder().encode('{"__proto__": 1}')), JSON.parse('{"__proto__": 1}'));
});

test("JSON: a line longer than a JavaScript string can be is a codec error that says so", () => {
  const size = constants.MAX_STRING_LENGTH + 1;
  const line = Buffer.alloc(size, 0x61);
  line[0] = 0x22;
  line[size - 1] = 0x22;
  assert.throws(
    () => json.decode(line),
    (error: unknown) =>
      error instanceof CodecError &&
      error.message === `line of ${size} bytes is longer than a JavaScript string can be (at most ${constants.MAX_STRING_LENGTH} UTF-16 code units): send large data on the data channel`,
  );
});
