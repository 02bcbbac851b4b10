/**
 * The SDK's own MessagePack encoder and decoder, beyond the shared vectors: every size boundary of
 * every format, strings on both sides of the short/long split, binary without copies, and a
 * cross-check against the reference JavaScript implementation (@msgpack/msgpack, a dev dependency).
 */
import assert from "node:assert/strict";
import { constants } from "node:buffer";
import { test } from "node:test";

import { Decoder as ReferenceDecoder, Encoder as ReferenceEncoder } from "@msgpack/msgpack";
import { CodecError, MessagePackCodec } from "@aspect-ipc/worker";

import { Random, randomValue } from "./helpers/random.js";
import { fromHex, toHex } from "./helpers/vectors.js";

const codec = new MessagePackCodec();

test("integers take the shortest form at every boundary, numbers and bigints alike", () => {
  const cases: Array<[number, string]> = [
    [0, "00"],
    [127, "7f"],
    [128, "cc80"],
    [255, "ccff"],
    [256, "cd0100"],
    [65535, "cdffff"],
    [65536, "ce00010000"],
    [2 ** 32 - 1, "ceffffffff"],
    [2 ** 32, "cf0000000100000000"],
    [Number.MAX_SAFE_INTEGER, "cf001fffffffffffff"],
    [-1, "ff"],
    [-32, "e0"],
    [-33, "d0df"],
    [-128, "d080"],
    [-129, "d1ff7f"],
    [-32768, "d18000"],
    [-32769, "d2ffff7fff"],
    [-(2 ** 31), "d280000000"],
    [-(2 ** 31) - 1, "d3ffffffff7fffffff"],
    [Number.MIN_SAFE_INTEGER, "d3ffe0000000000001"],
  ];
  for (const [value, hex] of cases) {
    assert.equal(toHex(codec.encode(value)), hex, String(value));
    assert.equal(toHex(codec.encode(BigInt(value))), hex, `${value}n`);
    assert.equal(codec.decode(fromHex(hex)), value, `decode ${hex}`);
  }
  assert.equal(toHex(codec.encode(2n ** 64n - 1n)), "cfffffffffffffffff");
  assert.equal(codec.decode(fromHex("cfffffffffffffffff")), 2n ** 64n - 1n);
  assert.equal(codec.decode(fromHex("d38000000000000000")), -(2n ** 63n));
  assert.equal(codec.decode(fromHex("d3ffe0000000000000")), -(2n ** 53n), "-2^53 is beyond the safe range: a bigint");
  assert.equal(toHex(codec.encode(-0)), "cb8000000000000000", "-0 is a float (D9): its sign is kept");
});

test("str, bin, array and map headers switch form exactly at their limits", () => {
  const header = (bytes: Uint8Array, length: number): string => toHex(bytes.subarray(0, bytes.byteLength - length));
  const strings: Array<[number, string]> = [[31, "bf"], [32, "d920"], [255, "d9ff"], [256, "da0100"], [65535, "daffff"], [65536, "db00010000"]];
  for (const [length, hex] of strings) {
    const value = "x".repeat(length);
    const encoded = codec.encode(value);
    assert.equal(header(encoded, length), hex, `str of ${length}`);
    assert.equal(codec.decode(encoded), value);
  }
  const binaries: Array<[number, string]> = [[0, "c400"], [255, "c4ff"], [256, "c50100"], [65535, "c5ffff"], [65536, "c600010000"]];
  for (const [length, hex] of binaries) {
    const value = new Uint8Array(length).fill(7);
    const encoded = codec.encode(value);
    assert.equal(header(encoded, length), hex, `bin of ${length}`);
    assert.deepEqual(codec.decode(encoded), value);
  }
  const containers: Array<[number, string, string]> = [[15, "9f", "8f"], [16, "dc0010", "de0010"], [65535, "dcffff", "deffff"], [65536, "dd00010000", "df00010000"]];
  for (const [count, arrayHex, mapHex] of containers) {
    const array = new Array<number>(count).fill(1);
    assert.equal(toHex(codec.encode(array).subarray(0, arrayHex.length / 2)), arrayHex, `array of ${count}`);
    assert.deepEqual(codec.decode(codec.encode(array)), array);
    const map = Object.fromEntries(Array.from({ length: count }, (_, index) => [`k${index}`, index]));
    const encodedMap = codec.encode(map);
    assert.equal(toHex(encodedMap.subarray(0, mapHex.length / 2)), mapHex, `map of ${count}`);
    const decodedMap = codec.decode(encodedMap) as Record<string, number>;
    assert.equal(Object.keys(decodedMap).length, count);
    assert.equal(decodedMap[`k${count - 1}`], count - 1);
  }
});

test("strings: UTF-8 both ways on either side of the short-string path, a leading U+FEFF kept", () => {
  const samples = ["", "a", "é", "日本", "😀", "a😀b", "\u{10ffff}", "\ufeffBOM", "\ufeff" + "x".repeat(40), "ü".repeat(20), "😀".repeat(17), "mixed ascii and ünïcödé " + "😀".repeat(30)];
  for (const text of samples) {
    const encoded = codec.encode(text);
    assert.equal(toHex(encoded.subarray(encoded.byteLength - Buffer.byteLength(text))), Buffer.from(text, "utf8").toString("hex"), text);
    assert.equal(codec.decode(encoded), text);
  }
  for (const lone of ["\ud800", "a\udc00", "x".repeat(40) + "\ud83d"]) {
    assert.throws(() => codec.encode({ text: lone }), (error: unknown) => error instanceof CodecError && /lone UTF-16 surrogate at \$\.text/.test(error.message));
  }
  for (const hex of ["a180", "a2c328", "a3eda080", "a4f4908080", "ac" + "61".repeat(11) + "ff", "d920" + "61".repeat(31) + "c0"]) {
    assert.throws(() => codec.decode(fromHex(hex)), /not valid UTF-8/, hex);
  }
});

test("a received bin is a view of the frame (no copy) and a plain Uint8Array; a sent one is copied once", () => {
  const frame = Buffer.from("92c403010203a178", "hex");
  const [bin] = codec.decode(frame) as [Uint8Array, string];
  assert.equal(Object.getPrototypeOf(bin), Uint8Array.prototype);
  assert.equal(bin.buffer, frame.buffer, "same memory");
  assert.deepEqual(bin, new Uint8Array([1, 2, 3]));
  const payload = new Uint8Array(100_000).fill(9);
  const encoded = codec.encode([payload]);
  payload.fill(0);
  assert.ok(encoded.subarray(6).every((byte) => byte === 9), "the encoding does not alias the caller's bytes");
});

test("one encoder serves message after message: large ones do not disturb the small ones after them", () => {
  const small = codec.encode({ a: 1 });
  const large = codec.encode({ blob: new Uint8Array(200_000).fill(3), tail: "end" });
  const smallAgain = codec.encode({ a: 1 });
  assert.equal(toHex(small), "81a16101");
  assert.equal(toHex(smallAgain), "81a16101");
  assert.deepEqual(codec.decode(large), { blob: new Uint8Array(200_000).fill(3), tail: "end" });
  assert.equal(toHex(small), "81a16101", "an earlier result is not overwritten by later encodes");
});

test("a map key __proto__ is an own member both ways (D5), it never reaches an object's prototype", () => {
  const decoded = codec.decode(fromHex("82a95f5f70726f746f5f5f81a17801a16102")) as Record<string, unknown>;
  assert.deepEqual(Object.keys(decoded), ["__proto__", "a"]);
  assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
  assert.equal((decoded as { x?: unknown }).x, undefined, "nothing inherited from the member");
  assert.deepEqual(Object.getOwnPropertyDescriptor(decoded, "__proto__")?.value, { x: 1 });
  assert.equal(toHex(codec.encode(decoded)), "82a95f5f70726f746f5f5f81a17801a16102");
  assert.ok(Object.is(codec.decode(codec.encode(-0)), -0));
});

test("a getter that throws while encoding is a CodecError, with the cause kept", () => {
  const value = {
    get broken(): number {
      throw new RangeError("no");
    },
  };
  assert.throws(() => codec.encode(value), (error: unknown) => error instanceof CodecError && error.cause instanceof RangeError);
});

// The reference decoder drops a leading U+FEFF from long strings (it decodes them with a default
// TextDecoder, which takes it for a byte-order mark): values here never start a string with one.
test("cross-check with @msgpack/msgpack: each side reads what the other writes, 2000 random values", () => {
  const random = new Random(20_261_125);
  const reference = new ReferenceEncoder({ useBigInt64: true });
  const referenceDecoder = new ReferenceDecoder({ useBigInt64: true });
  const normalize = (value: unknown): unknown =>
    typeof value === "bigint" && value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : Array.isArray(value)
        ? value.map(normalize)
        : value !== null && typeof value === "object" && !(value instanceof Uint8Array)
          ? Object.fromEntries(Object.entries(value).map(([key, item]) => [key, normalize(item)]))
          : value;
  for (let round = 0; round < 2000; round++) {
    const value = randomValue(random, 4, { leadingBom: false });
    const ours = codec.encode(value);
    assert.deepEqual(normalize(referenceDecoder.decode(ours)), value, `reference reads ours, seed round ${round}`);
    assert.deepEqual(codec.decode(reference.encode(value)), value, `we read the reference's, round ${round}`);
  }
});

test("for a frame, a binary of 64 KiB or more is spliced in, not copied; smaller ones are copied; the bytes are encode()'s", () => {
  // encodeWithRoom is the channel's (internal) way to encode a frame: room for the header in front.
  const framed = codec as unknown as { encodeWithRoom(value: unknown, room: number): Uint8Array | Uint8Array[] };
  const big = new Uint8Array(64 * 1024).fill(5);
  const bigger = Buffer.alloc(100_000, 6);
  const small = new Uint8Array(64 * 1024 - 1).fill(7);
  const value = { a: big, b: [small, "x", bigger], c: 1 };
  const parts = framed.encodeWithRoom(value, 4);
  assert.ok(Array.isArray(parts));
  assert.equal(parts.filter((part) => part === big).length, 1, "the caller's Uint8Array itself is a part");
  assert.equal(parts.filter((part) => part === bigger).length, 1, "a Buffer too");
  assert.ok(!parts.includes(small), "under 64 KiB: copied");
  const joined = Buffer.concat(parts);
  assert.deepEqual(joined.subarray(4), Buffer.from(codec.encode(value)), "the same bytes as encode()");
  // Nothing spliced: one buffer, as before.
  assert.ok(!Array.isArray(framed.encodeWithRoom({ small }, 4)));
  // The next message keeps none of the caller's buffers (the room is the framing's to fill).
  const next = framed.encodeWithRoom([1], 4);
  assert.ok(!Array.isArray(next));
  assert.deepEqual(next.subarray(4), new Uint8Array([0x91, 1]));
});

test("a str longer than a JavaScript string can be is a codec error that says so, with the request's id (not invalid UTF-8)", () => {
  const { MAX_STRING_LENGTH } = constants;
  const size = MAX_STRING_LENGTH + 1;
  const head = codec.encode({ jsonrpc: "2.0", id: 42, method: "size", params: { data: "" } });
  // The empty str (a0) at the end becomes a str 32 of `size` ASCII bytes.
  const frame = Buffer.allocUnsafe(head.byteLength - 1 + 5 + size);
  frame.set(head.subarray(0, head.byteLength - 1));
  frame[head.byteLength - 1] = 0xdb;
  frame.writeUInt32BE(size, head.byteLength);
  frame.fill(0x61, head.byteLength + 4);
  assert.throws(
    () => codec.decode(frame),
    (error: unknown) =>
      error instanceof CodecError &&
      (error as unknown as { recoveredId?: unknown }).recoveredId === 42 &&
      error.message ===
        `str at offset ${head.byteLength - 1} of ${size} bytes is longer than a JavaScript string can be ` +
          `(at most ${MAX_STRING_LENGTH} UTF-16 code units): send it as binary, or in smaller strings`,
  );
  // Invalid UTF-8 is still said to be that.
  assert.throws(() => codec.decode(Buffer.from("a1ff", "hex")), /str at offset 0 is not valid UTF-8/);
});
