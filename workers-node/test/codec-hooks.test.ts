/**
 * Codec hooks (decision S1): `new MessagePackCodec({ encodeHook, decodeHook })` and the same on
 * `JsonCodec`. The encode hook replaces what the wire cannot carry, the decode hook each decoded
 * map, innermost first; nothing new goes on the wire.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { CodecError, JsonCodec, MessagePackCodec, type DecodeHook, type EncodeHook } from "@aspect-ipc/worker";

import { toHex } from "./helpers/vectors.js";

const dates: EncodeHook = (value) => (value instanceof Date ? { __date__: value.toISOString() } : undefined);
const undates: DecodeHook = (map) => (typeof map.__date__ === "string" && Object.keys(map).length === 1 ? new Date(map.__date__) : map);

for (const [name, make] of [
  ["MessagePackCodec", (hooks: ConstructorParameters<typeof MessagePackCodec>[0]) => new MessagePackCodec(hooks)],
  ["JsonCodec", (hooks: ConstructorParameters<typeof JsonCodec>[0]) => new JsonCodec(hooks)],
] as const) {
  test(`${name}: an encode hook replaces a Date, a decode hook turns the map back into one`, () => {
    const codec = make({ encodeHook: dates, decodeHook: undates });
    const when = new Date("2024-05-06T07:08:09.010Z");
    const message = { jsonrpc: "2.0", id: 1, method: "log", params: { rows: [{ when }, { when: null }] } };
    const decoded = codec.decode(codec.encode(message)) as { params: { rows: Array<{ when: unknown }> } };
    assert.ok(decoded.params.rows[0]?.when instanceof Date);
    assert.equal((decoded.params.rows[0].when as Date).getTime(), when.getTime());
    assert.equal(decoded.params.rows[1]?.when, null);
    // The wire carries the replacement only: a codec without hooks reads the plain map.
    assert.deepEqual((make(undefined).decode(codec.encode({ when })) as { when: unknown }).when, { __date__: when.toISOString() });
  });

  test(`${name}: a replacement that needs the hook again gets it, down to 64 applications, then a CodecError`, () => {
    class Box {
      constructor(readonly inner: unknown) {}
    }
    const unbox = make({ encodeHook: (value) => (value instanceof Box ? value.inner : undefined) });
    assert.deepEqual(make(undefined).decode(unbox.encode({ x: new Box(new Box([new Box(3)])) })), { x: [3] });
    let nested: unknown = "deep";
    for (let index = 0; index < 64; index++) nested = new Box(nested);
    assert.deepEqual(make(undefined).decode(unbox.encode([nested])), ["deep"]);

    const forever = make({ encodeHook: (value) => value });
    assert.throws(
      () => forever.encode({ params: { x: new Box(1) } }),
      (error: unknown) =>
        error instanceof CodecError &&
        error.path === "$.params.x" &&
        /^encode hook returned a value it cannot encode: a Box at \$\.params\.x is still not a value the wire carries after 64 applications of the hook/.test(error.message),
    );
  });

  test(`${name}: a hook that throws is a CodecError naming the place and the hook's message, the error kept as cause`, () => {
    const boom = new Error("no idea what a Map is");
    const codec = make({
      encodeHook: () => {
        throw boom;
      },
    });
    assert.throws(
      () => codec.encode({ params: { "a b": [0, new Map()] } }),
      (error: unknown) =>
        error instanceof CodecError &&
        error.cause === boom &&
        error.path === '$.params["a b"][1]' &&
        error.message === `encode hook failed on a Map at $.params["a b"][1] (${codec.name}): Error: no idea what a Map is`,
    );
  });

  test(`${name}: a hook returning undefined declines: the value is refused, saying what the hook should return`, () => {
    const codec = make({ encodeHook: () => undefined });
    // The hook is there already: no advice to pass one.
    assert.throws(
      () => codec.encode({ s: new Set([1]) }),
      /^CodecError: cannot encode a Set at \$\.s as \w+: the encodeHook returned undefined for it \(declined it\): have the hook return a value the wire carries for it \(null, a boolean, number, string, (Uint8Array, )?array or plain object\); for example, convert a Set to an array: Array\.from\(set\)$/,
    );
  });

  test(`${name}: the decode hook sees every map innermost first, the envelope last, after its checks`, () => {
    const seen: string[] = [];
    const codec = make({
      decodeHook: (map) => {
        seen.push(Object.keys(map).join(","));
        return map.tag === "swap" ? "swapped" : map;
      },
    });
    const bytes = make(undefined).encode({ jsonrpc: "2.0", id: 7, method: "m", params: { a: { b: {} }, list: [{ tag: "swap" }, { c: 1 }] } });
    const decoded = codec.decode(bytes);
    assert.deepEqual(seen, ["", "b", "tag", "c", "a,list", "jsonrpc,id,method,params"]);
    assert.deepEqual(decoded, { jsonrpc: "2.0", id: 7, method: "m", params: { a: { b: {} }, list: ["swapped", { c: 1 }] } });
    // The hook's result may be anything, the envelope's too.
    assert.equal(make({ decodeHook: () => 42 }).decode(bytes), 42);
  });

  test(`${name}: a decode hook that throws makes the message undecodable (-32700 with its id)`, () => {
    const codec = make({
      decodeHook: (map) => {
        if ("bad" in map) throw new RangeError("not a point");
        return map;
      },
    });
    const bytes = make(undefined).encode({ jsonrpc: "2.0", id: 9, method: "m", params: { p: { bad: 1 } } });
    assert.throws(
      () => codec.decode(bytes),
      (error: unknown) =>
        error instanceof CodecError &&
        error.cause instanceof RangeError &&
        (error as unknown as { recoveredId?: unknown }).recoveredId === 9 &&
        error.path === "$.params.p" &&
        new RegExp(`^decode hook failed on the map at \\$\\.params\\.p \\(${codec.name}\\): RangeError: not a point$`).test(error.message),
    );
  });

  test(`${name}: hooks must be functions`, () => {
    assert.throws(() => make({ encodeHook: "nope" as unknown as EncodeHook }), new RegExp(`${name} option encodeHook must be a function, got string`));
    assert.throws(() => make({ decodeHook: {} as unknown as DecodeHook }), /option decodeHook must be a function, got object/);
  });
}

test("MessagePackCodec: a typed array sent as the bytes of its buffer (a view, not a copy of the array)", () => {
  const f64 = new Float64Array([1.5, -2, 3.25]);
  const codec = new MessagePackCodec({
    encodeHook: (value) => (value instanceof Float64Array ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : undefined),
  });
  const decoded = new MessagePackCodec().decode(codec.encode({ a: f64.subarray(1) })) as { a: Uint8Array };
  assert.deepEqual([...new Float64Array(decoded.a.slice().buffer)], [-2, 3.25]);
});

test("MessagePackCodec: the hook is called once per value, also when the message then fails (the error is located by replaying it)", () => {
  let calls = 0;
  const codec = new MessagePackCodec({
    encodeHook: (value) => {
      calls++;
      return value instanceof Date ? value.getTime() : undefined;
    },
  });
  assert.throws(() => codec.encode({ params: { rows: [{ when: new Date(0) }, { when: new Date(1) }, { when: new Set() }] } }), (error: unknown) => {
    return error instanceof CodecError && error.path === "$.params.rows[2].when" && /cannot encode a Set at \$\.params\.rows\[2\]\.when/.test(error.message);
  });
  assert.equal(calls, 3);
  // The codec is whole again for the next message.
  assert.equal(toHex(codec.encode([new Date(5)])), "9105");
});

test("MessagePackCodec: a hook may not call its own codec's encode (the message being written would be lost)", () => {
  const codec: MessagePackCodec = new MessagePackCodec({ encodeHook: (value) => codec.encode(String(value)) });
  assert.throws(() => codec.encode([Symbol("s")]), /encode hook failed on a symbol at \$\[0\] \(MessagePack\): CodecError: MessagePackCodec\.encode was called from inside its own encodeHook/);
  assert.equal(toHex(codec.encode([1])), "9101");
});

test("JsonCodec: binary is handed to the encode hook (JSON has no binary)", () => {
  const codec = new JsonCodec({ encodeHook: (value) => (value instanceof Uint8Array ? Buffer.from(value).toString("base64") : undefined) });
  assert.equal(new TextDecoder().decode(codec.encode({ b: new Uint8Array([1, 2, 3]) })), '{"b":"AQID"}');
});

test("JsonCodec: the decode hook runs on lines read by the exact parser too (big integers, -0)", () => {
  const codec = new JsonCodec({ decodeHook: (map) => ("n" in map ? { n: map.n, hooked: true } : map) });
  const decoded = codec.decode(new TextEncoder().encode('[{"n": 18446744073709551615}, {"n": -0}]'));
  assert.deepEqual(decoded, [
    { n: 18446744073709551615n, hooked: true },
    { n: 0, hooked: true },
  ]);
});

test("without hooks, nothing changes: the same bytes, and unknown types are still refused", () => {
  const value = { jsonrpc: "2.0", id: 1, method: "m", params: { a: [1, 2.5, "x", null, true], b: new Uint8Array([1]) } };
  assert.deepEqual(new MessagePackCodec({}).encode(value), new MessagePackCodec().encode(value));
  assert.deepEqual(new MessagePackCodec({ encodeHook: dates }).encode(value), new MessagePackCodec().encode(value));
  assert.throws(() => new MessagePackCodec().encode({ when: new Date(0) }), CodecError);
});

test("JsonCodec: binary the encode hook declines is refused saying what the hook should return, not to pass one", () => {
  const codec = new JsonCodec({ encodeHook: (value) => (value instanceof Date ? value.getTime() : undefined) });
  assert.throws(
    () => codec.encode({ params: { v: new Uint8Array([1, 2]) } }),
    (error: unknown) =>
      error instanceof CodecError &&
      error.path === "$.params.v" &&
      error.message ===
        "cannot encode binary data (Uint8Array of 2 bytes) at $.params.v as JSON: the encodeHook returned undefined for it (declined it): " +
          "binary has no JSON form, so return a string for it from the hook (base64: Buffer.from(bytes).toString('base64')) or an array " +
          "of numbers (Array.from(bytes)), or send it on the data channel",
  );
  // Without a hook, the advice is still to pass one.
  assert.throws(() => new JsonCodec().encode({ v: new Uint8Array([1]) }), /or pass an encodeHook to JsonCodec$/);
});

test("a failing decode hook is located by the same path on both codecs, through arrays and odd keys", () => {
  const message = { jsonrpc: "2.0", id: "x", method: "m", params: [0, { "odd key": [{ skip: new Uint8Array(70_000), e: "", z: new Uint8Array(0), n: 1.5 }, { boom: 1 }] }] };
  const hook: DecodeHook = (map) => {
    if ("boom" in map) throw new Error("dec-boom");
    return map;
  };
  for (const codec of [new MessagePackCodec({ decodeHook: hook }), new JsonCodec({ decodeHook: hook })]) {
    const bytes = codec.name === "JSON" ? new JsonCodec().encode({ ...message, params: [0, { "odd key": [{ n: 1.5 }, { boom: 1 }] }] }) : new MessagePackCodec().encode(message);
    assert.throws(
      () => codec.decode(bytes),
      (error: unknown) =>
        error instanceof CodecError &&
        error.path === '$.params[1]["odd key"][1]' &&
        error.message === `decode hook failed on the map at $.params[1]["odd key"][1] (${codec.name}): Error: dec-boom`,
    );
  }
  // The envelope itself is `$`.
  assert.throws(
    () => new MessagePackCodec({ decodeHook: (map) => ("jsonrpc" in map ? (() => { throw new Error("top"); })() : map) }).decode(new MessagePackCodec().encode(message)),
    /^CodecError: decode hook failed on the map at \$ \(MessagePack\): Error: top$/,
  );
});
