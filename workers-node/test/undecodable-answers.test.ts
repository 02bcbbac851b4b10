/**
 * An answer that does not decode (PROTOCOL.md 4.8): when it is well-formed, a map without `method`,
 * with `result` or `error`, and its `id` names a request the worker is waiting for, that request
 * fails at once with a ProtocolError naming the decoding failure, and nothing is sent back. Any
 * other undecodable answer (unknown id, broken syntax) is an undecodable message as before
 * (`-32700`, id null), and the request it seemed to answer still waits for its real answer.
 *
 * The worker is the real test worker; its `callParent` handler calls the parent and returns what
 * it got, so a failed call comes back to the test as the handler's `-32000` (`data.type` names
 * the error's class).
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { CodecError, ErrorCodes, JsonCodec, LengthPrefixedFraming, MessagePackCodec } from "@aspect-ipc/worker";

import { connectedWorker, type DataConnection, type WorkerProcess } from "./helpers/parent.js";

type Message = Record<string, unknown>;

/** How long "at once" may take: far below the 10 s the helpers wait before calling it a hang. */
const AT_ONCE_MS = 3000;

const msgpack = new MessagePackCodec();
const framing = new LengthPrefixedFraming();

/** `{"jsonrpc": "2.0", "id": id, member: <raw>}` as MessagePack, with `raw` spliced in undecoded. */
function rawAnswer(id: number, member: "result" | "error", raw: number[]): Uint8Array {
  const head = msgpack.encode({ jsonrpc: "2.0", id }); // a fixmap of 2 members
  assert.equal(head[0], 0x82);
  const key = msgpack.encode(member);
  return framing.encode(Uint8Array.from([0x83, ...head.subarray(1), ...key, ...raw]));
}

/** MessagePack items that break the aspect-ipc mapping (PROTOCOL.md 3.2). */
const EXT = [0xd4, 0x05, 0x01]; // fixext 1
const BAD_UTF8_STR = [0xa2, 0xc3, 0x28];
const INT_KEY_MAP = [0x81, 0x01, 0x02];
const TOO_DEEP = [...Array<number>(513).fill(0x91), 0xc0]; // 513 nested arrays around a nil
/** An error map whose message is not valid UTF-8. */
const ERROR_BAD_MESSAGE = [0x82, ...msgpack.encode("code"), 0x01, ...msgpack.encode("message"), ...BAD_UTF8_STR];

/** Starts `callParent` on `channel`'s side; returns the worker's request (to answer) and the handler's answer. */
async function callParent(
  worker: WorkerProcess,
  parent: DataConnection,
  via: "control" | "data",
  id: string,
): Promise<{ request: Message; answer: (timeoutMs?: number) => Promise<Message> }> {
  const method = `parentMethod-${id}`;
  // The call to the worker goes on the other channel than the worker's call to the parent, so
  // that the channel under test carries nothing but the answer under test.
  const call = { jsonrpc: "2.0", id, method: "callParent", params: { method, via } };
  const isAnswer = (m: Message): boolean => m.id === id && ("result" in m || "error" in m);
  let answer: (timeoutMs?: number) => Promise<Message>;
  let request: Message;
  if (via === "control") {
    parent.send(call);
    request = await worker.waitControl((m) => m.method === method, `the worker's control request ${method}`);
    answer = (timeoutMs) => parent.waitFor(isAnswer, `the answer to callParent ${id}`, timeoutMs);
  } else {
    worker.send(call);
    request = await parent.waitFor((m) => m.method === method, `the worker's data request ${method}`);
    answer = (timeoutMs) => worker.waitControl(isAnswer, `the answer to callParent ${id}`, timeoutMs);
  }
  return { request, answer };
}

/** Asserts that the handler's call failed with a ProtocolError naming `detail`. */
function assertProtocolError(answer: Message, requestId: unknown, channel: string, detail: RegExp): void {
  assert.ok("error" in answer, `expected an error, got ${JSON.stringify(answer, (_, v: unknown) => (typeof v === "bigint" ? String(v) : v))}`);
  const error = answer.error as { code: number; message: string; data: { type: string } };
  assert.equal(error.code, ErrorCodes.HandlerError);
  assert.equal(error.data.type, "ProtocolError");
  assert.ok(
    error.message.startsWith(`${channel} channel: the answer to request parentMethod-`) && error.message.includes(`(id ${String(requestId)}) cannot be decoded: `),
    error.message,
  );
  assert.match(error.message, detail);
}

const isParseError = (m: Message): boolean => (m.error as { code?: unknown } | undefined)?.code === ErrorCodes.ParseError;

test("control: an undecodable answer naming a pending request fails it at once with a ProtocolError, and nothing is sent back", async (t) => {
  const { worker, parent } = await connectedWorker(t);
  const cases: Array<[string, (id: unknown) => string, RegExp]> = [
    ["int-out-of-range", (id) => `{"jsonrpc":"2.0","id":${String(id)},"result":[18446744073709551616]}`, /outside \[-2\^63, 2\^64 - 1\]/],
    ["lone-surrogate", (id) => `{"error":{"code":1,"message":"\\ud800"},"id":${String(id)},"jsonrpc":"2.0"}`, /lone surrogate/],
    ["too-deep", (id) => `{"jsonrpc":"2.0","id":${String(id)},"result":${"[".repeat(513)}${"]".repeat(513)}}`, /nesting deeper than 512/],
    ["float-overflow", (id) => `{"jsonrpc":"2.0","id":${String(id)},"result":1e400}`, /too large for a float 64/],
  ];
  for (const [name, line, detail] of cases) {
    const { request, answer } = await callParent(worker, parent, "control", name);
    worker.writeRaw(`${line(request.id)}\n`);
    assertProtocolError(await answer(AT_ONCE_MS), request.id, "control", detail);
  }
  // The worker answered none of them: a response is never answered.
  assert.deepEqual((await worker.request("$/ping")).result, {});
  assert.equal(worker.control.items.filter(isParseError).length, 0, JSON.stringify(worker.control.items.filter(isParseError)));
});

test("data: an undecodable answer naming a pending request fails it at once with a ProtocolError, and nothing is sent back", async (t) => {
  const { worker, parent } = await connectedWorker(t);
  const cases: Array<[string, "result" | "error", number[], RegExp]> = [
    ["ext-type", "result", [0x91, ...EXT], /ext type at offset/],
    ["invalid-utf8", "error", ERROR_BAD_MESSAGE, /str at offset \d+ is not valid UTF-8/],
    ["int-key", "result", INT_KEY_MAP, /map key at offset \d+ is not a string/],
    ["too-deep", "result", TOO_DEEP, /nesting deeper than 512/],
  ];
  for (const [name, member, raw, detail] of cases) {
    const { request, answer } = await callParent(worker, parent, "data", name);
    parent.writeRaw(rawAnswer(request.id as number, member, raw));
    assertProtocolError(await answer(AT_ONCE_MS), request.id, "data", detail);
  }
  assert.deepEqual((await parent.request("$/ping")).result, {});
  assert.equal(parent.messages.items.filter(isParseError).length, 0, JSON.stringify(parent.messages.items.filter(isParseError)));
});

test("control: an undecodable answer with an unknown id, or broken JSON, is -32700 with id null; the request still waits", async (t) => {
  const { worker, parent } = await connectedWorker(t);
  const { request, answer } = await callParent(worker, parent, "control", "waits");
  const id = request.id as number;
  // An id no request of the worker has, then broken syntax (never recovered), each with a value that does not decode.
  worker.writeRaw(`{"jsonrpc":"2.0","id":${id + 1000},"result":[18446744073709551616]}\n`);
  worker.writeRaw(`{"jsonrpc":"2.0","id":${id},"result":[18446744073709551616,}\n`);
  const parseErrors = () => worker.control.items.filter(isParseError);
  await worker.waitControl((m) => isParseError(m) && parseErrors().length === 2, "two -32700");
  for (const error of parseErrors()) assert.equal(error.id, null);
  assert.ok(!worker.control.items.some((m) => m.id === "waits") && !parent.messages.items.some((m) => m.id === "waits"), "callParent still runs");
  worker.send({ jsonrpc: "2.0", id, result: "the real answer" });
  assert.deepEqual((await answer()).result, "the real answer");
});

test("data: an undecodable answer with an unknown id, or not one whole MessagePack object, is -32700 with id null; the request still waits", async (t) => {
  const { worker, parent } = await connectedWorker(t);
  const { request, answer } = await callParent(worker, parent, "data", "waits");
  const id = request.id as number;
  parent.writeRaw(rawAnswer(id + 1000, "result", EXT));
  const truncated = rawAnswer(id, "result", [0x92, ...EXT]); // an array of 2 holding only one item
  parent.writeRaw(truncated);
  const trailing = msgpack.encode({ jsonrpc: "2.0", id, result: 1 });
  parent.writeRaw(framing.encode(Uint8Array.from([...trailing, ...EXT])));
  const parseErrors = () => parent.messages.items.filter(isParseError);
  await parent.waitFor((m) => isParseError(m) && parseErrors().length === 3, "three -32700");
  for (const error of parseErrors()) assert.equal(error.id, null);
  assert.ok(!worker.control.items.some((m) => m.id === "waits"), "callParent still runs");
  parent.send({ jsonrpc: "2.0", id, result: "the real answer" });
  assert.deepEqual((await answer()).result, "the real answer");
});

test("codecs: an answer's id is recovered apart from a request's; its result and error are not decoded", () => {
  const answerIdOf = (decode: () => unknown): unknown => {
    try {
      decode();
    } catch (error) {
      assert.ok(error instanceof CodecError);
      const ids = error as unknown as { recoveredId?: unknown; answerId?: unknown };
      return { request: ids.recoveredId, answer: ids.answerId };
    }
    assert.fail("expected a CodecError");
  };
  const json = new JsonCodec();
  const text = (line: string) => () => json.decode(new TextEncoder().encode(line));
  assert.deepEqual(answerIdOf(text('{"jsonrpc":"2.0","id":3,"result":[18446744073709551616]}')), { request: undefined, answer: 3 });
  assert.deepEqual(answerIdOf(text('{"id":"a","error":{"code":1,"message":"\\udc00"}}')), { request: undefined, answer: "a" });
  assert.deepEqual(answerIdOf(text('{"jsonrpc":"2.0","id":18446744073709551615,"result":1e999}')), { request: undefined, answer: 2n ** 64n - 1n });
  // Not an answer: a method (a request, recovered as before), no result nor error, a bad id, broken syntax.
  assert.deepEqual(answerIdOf(text('{"jsonrpc":"2.0","id":3,"method":"m","result":["\\ud800"]}')), { request: 3, answer: undefined });
  assert.deepEqual(answerIdOf(text('{"jsonrpc":"2.0","id":3,"method":7,"result":["\\ud800"]}')), { request: undefined, answer: undefined });
  assert.deepEqual(answerIdOf(text('{"jsonrpc":"2.0","id":3,"params":["\\ud800"]}')), { request: undefined, answer: undefined });
  assert.deepEqual(answerIdOf(text('{"jsonrpc":"2.0","id":3.0,"result":["\\ud800"]}')), { request: undefined, answer: undefined });
  assert.deepEqual(answerIdOf(text('{"jsonrpc":"2.0","id":"\\ud800","result":1}')), { request: undefined, answer: undefined });
  assert.deepEqual(answerIdOf(text('{"jsonrpc":"2.0","id":3,"result":[1,}')), { request: undefined, answer: undefined });
  assert.deepEqual(answerIdOf(text('[{"jsonrpc":"2.0","id":3,"result":["\\ud800"]}]')), { request: undefined, answer: undefined });

  const frame = (bytes: Uint8Array) => () => msgpack.decode(bytes.subarray(4)); // without the frame header
  assert.deepEqual(answerIdOf(frame(rawAnswer(3, "result", EXT))), { request: undefined, answer: 3 });
  assert.deepEqual(answerIdOf(frame(rawAnswer(4, "error", ERROR_BAD_MESSAGE))), { request: undefined, answer: 4 });
  assert.deepEqual(answerIdOf(frame(rawAnswer(5, "result", [0x92, ...EXT]))), { request: undefined, answer: undefined }); // truncated
  const withMethod = Uint8Array.from([0x84, ...msgpack.encode({ jsonrpc: "2.0", id: 6, method: "m" }).subarray(1), ...msgpack.encode("result"), ...EXT]);
  assert.deepEqual(answerIdOf(() => msgpack.decode(withMethod)), { request: 6, answer: undefined });
  const floatId = Uint8Array.from([0x83, ...msgpack.encode("id"), 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, ...msgpack.encode("result"), ...EXT]);
  assert.deepEqual(answerIdOf(() => msgpack.decode(floatId)), { request: undefined, answer: undefined });
});

test("codecs: an answer whose decode hook throws is recovered as well", () => {
  const decodeHook = (map: Record<string, unknown>): unknown => {
    if ("bad" in map) throw new RangeError("not a point");
    return map;
  };
  for (const codec of [new JsonCodec({ decodeHook }), new MessagePackCodec({ decodeHook })]) {
    const plain = codec instanceof JsonCodec ? new JsonCodec() : msgpack;
    const bytes = plain.encode({ jsonrpc: "2.0", id: 8, result: { bad: 1 } });
    assert.throws(
      () => codec.decode(bytes),
      (error: unknown) => error instanceof CodecError && (error as unknown as { answerId?: unknown }).answerId === 8,
      codec.name,
    );
  }
});
