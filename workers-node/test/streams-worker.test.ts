/**
 * Streams (PROTOCOL.md 13) against the real test worker process: countTo (output), sumStream
 * (input), echoStream (both), credit with a slow consumer, cancellation, protocol errors, limits.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";

import { ErrorCodes } from "@aspect-ipc/worker";

import { TEST_WORKER, WorkerProcess, connectedWorker, tempDirectory, type DataConnection } from "./helpers/parent.js";

type Message = Record<string, unknown>;

const params = (message: Message): Message => message.params as Message;
const streamMessages = (parent: DataConnection, method: string, id: unknown, dir: string): Message[] =>
  parent.messages.items.filter((m) => m.method === method && params(m).stream === id && params(m).dir === dir);
const answerTo = (parent: DataConnection, id: unknown): Promise<Message> => parent.waitFor((m) => m.id === id && ("result" in m || "error" in m), `response ${String(id)}`);
const credit = (stream: unknown, dir: string, add: number): Message => ({ jsonrpc: "2.0", method: "$/stream/credit", params: { stream, dir, add } });
const item = (stream: unknown, seq: number, value: unknown): Message => ({ jsonrpc: "2.0", method: "$/stream/item", params: { stream, dir: "in", seq, value } });
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test("countTo with window 2 and a slow consumer: never more than the window outstanding", async (t) => {
  const { parent } = await connectedWorker(t);
  parent.send({ jsonrpc: "2.0", id: 5, method: "countTo", params: { n: 6, size: 0, "$/stream": { out: { window: 2 } } } });
  let granted = 0;
  for (let taken = 0; taken < 6; taken++) {
    await parent.waitFor((m) => m.method === "$/stream/item" && params(m).seq === taken, `item ${taken}`);
    await pause(30); // a slow consumer: the producer must wait for credit, not run ahead
    const received = streamMessages(parent, "$/stream/item", 5, "out").length;
    assert.ok(received <= 2 + granted, `${received} items received with a window of 2 and ${granted} granted`);
    // Window 2: a grant of 1 after each item taken (PROTOCOL.md 13.3), unless the end came.
    if (!parent.messages.items.some((m) => m.id === 5)) {
      parent.send(credit(5, "out", 1));
      granted++;
    }
  }
  assert.deepEqual((await answerTo(parent, 5)).result, { count: 6 });
  assert.deepEqual(
    streamMessages(parent, "$/stream/item", 5, "out").map((m) => [params(m).seq, params(m).value]),
    [0, 1, 2, 3, 4, 5].map((i) => [i, i]),
  );
  // Items come before the response that ends the stream (13.4).
  const order = parent.messages.items.filter((m) => params(m)?.stream === 5 || m.id === 5);
  assert.equal(order.at(-1)?.id, 5);
});

test("countTo: binary items on data, -32602 without an output stream or with binary on control", async (t) => {
  const { worker, parent } = await connectedWorker(t);
  parent.send({ jsonrpc: "2.0", id: "b", method: "countTo", params: { n: 2, size: 16, "$/stream": { out: { window: 16 } } } });
  assert.deepEqual((await answerTo(parent, "b")).result, { count: 2 });
  const values = streamMessages(parent, "$/stream/item", "b", "out").map((m) => params(m).value as Uint8Array);
  assert.deepEqual(values.map((v) => Buffer.from(v).toString("hex")), ["00000000000000000000000000000000", "00000000000000010000000000000000"]);
  const missing = (await parent.request("countTo", { n: 2, size: 0 })).error as Message;
  assert.equal(missing.code, ErrorCodes.InvalidParams);
  assert.match(missing.message as string, /countTo needs an output stream \(\$\/stream\.out\)/);
  const onControl = (await worker.request("countTo", { n: 1, size: 8, "$/stream": { out: { window: 1 } } })).error as Message;
  assert.equal(onControl.code, ErrorCodes.InvalidParams);
  assert.deepEqual((await worker.request("countTo", { n: 2, size: 0, "$/stream": { out: { window: 4 } } })).result, { count: 2 });
  const bad = (await parent.request("countTo", { n: 1, size: 0, "$/stream": { out: { window: 0 } } })).error as Message;
  assert.equal(bad.code, ErrorCodes.InvalidParams);
});

test("sumStream: credit of the whole window first, then the exact sum; a $/stream/error propagates", async (t) => {
  const { parent } = await connectedWorker(t);
  parent.send({ jsonrpc: "2.0", id: 8, method: "sumStream", params: { "$/stream": { in: {} } } });
  const first = await parent.waitFor((m) => m.method === "$/stream/credit" && params(m).stream === 8, "input credit");
  assert.deepEqual(params(first), { stream: 8, dir: "in", add: 16 });
  for (let seq = 0; seq < 10; seq++) parent.send(item(8, seq, 2n ** 59n));
  parent.send({ jsonrpc: "2.0", method: "$/stream/end", params: { stream: 8, dir: "in" } });
  assert.equal((await answerTo(parent, 8)).result, 10n * 2n ** 59n);
  // Later grants (8 per 8 taken) only if the items were taken before the end arrived (13.3).
  const grants = streamMessages(parent, "$/stream/credit", 8, "in").map((m) => params(m).add);
  assert.ok(grants.length <= 2 && grants.slice(1).every((add) => add === 8), `grants ${grants.join(", ")}`);

  parent.send({ jsonrpc: "2.0", id: 9, method: "sumStream", params: { "$/stream": { in: {} } } });
  await parent.waitFor((m) => m.method === "$/stream/credit" && params(m).stream === 9, "input credit");
  parent.send(item(9, 0, 1));
  parent.send({ jsonrpc: "2.0", method: "$/stream/error", params: { stream: 9, dir: "in", error: { code: 4001, message: "disk gone", data: { path: "/x" } } } });
  assert.deepEqual((await answerTo(parent, 9)).error, { code: 4001, message: "disk gone", data: { path: "/x" } });

  parent.send({ jsonrpc: "2.0", id: 10, method: "sumStream", params: { "$/stream": { in: {} } } });
  await parent.waitFor((m) => m.method === "$/stream/credit" && params(m).stream === 10, "input credit");
  parent.send(item(10, 0, 1));
  parent.send(item(10, 1, "x"));
  const notNumber = (await answerTo(parent, 10)).error as Message;
  assert.equal(notNumber.code, ErrorCodes.InvalidParams);
  assert.match(notNumber.message as string, /item 1 must be a number/);
});

test("echoStream: each item comes back in order; a seq gap is a -32010 protocol error", async (t) => {
  const { parent } = await connectedWorker(t);
  parent.send({ jsonrpc: "2.0", id: "e1", method: "echoStream", params: { "$/stream": { in: {}, out: { window: 4 } } } });
  await parent.waitFor((m) => m.method === "$/stream/credit" && params(m).stream === "e1", "input credit");
  const sent = [1, "two", new Uint8Array([3]), null, { five: 5 }, 6];
  for (const [seq, value] of sent.entries()) {
    parent.send(item("e1", seq, value));
    await parent.waitFor((m) => m.method === "$/stream/item" && params(m).stream === "e1" && params(m).seq === seq, `echo ${seq}`);
    if (seq % 2 === 1) parent.send(credit("e1", "out", 2)); // window 4: a grant of 2 after every 2 taken
  }
  parent.send({ jsonrpc: "2.0", method: "$/stream/end", params: { stream: "e1", dir: "in" } });
  assert.deepEqual((await answerTo(parent, "e1")).result, { count: 6 });
  assert.deepEqual(streamMessages(parent, "$/stream/item", "e1", "out").map((m) => params(m).value), sent);

  parent.send({ jsonrpc: "2.0", id: "e2", method: "echoStream", params: { "$/stream": { in: {}, out: { window: 4 } } } });
  await parent.waitFor((m) => m.method === "$/stream/credit" && params(m).stream === "e2", "input credit");
  parent.send(item("e2", 0, 0));
  parent.send(item("e2", 2, 2));
  assert.deepEqual(((await answerTo(parent, "e2")).error as Message).data, { stream: "e2", dir: "in" });
  assert.equal(((await answerTo(parent, "e2")).error as Message).code, ErrorCodes.StreamProtocolError);
  assert.deepEqual((await parent.request("$/ping")).result, {}, "the channel goes on");
});

test("cancel mid-stream: a producer waiting for credit stops at once (cancelObserved, -32002)", async (t) => {
  const { worker, parent } = await connectedWorker(t);
  parent.send({ jsonrpc: "2.0", id: 21, method: "countTo", params: { n: 1000, size: 0, tag: "c21", "$/stream": { out: { window: 2 } } } });
  await parent.waitFor((m) => m.method === "$/stream/item" && params(m).seq === 1, "two items");
  const cancelledAt = performance.now();
  parent.send({ jsonrpc: "2.0", method: "$/cancelRequest", params: { id: 21 } });
  await worker.waitControl((m) => m.method === "cancelObserved" && params(m).tag === "c21", "cancelObserved");
  // The bound is 100 ms (13.6); the margin covers a loaded machine while still catching a wait left until credit.
  assert.ok(performance.now() - cancelledAt < 1000, "the producer stopped while waiting for credit");
  assert.equal(((await answerTo(parent, 21)).error as Message).code, ErrorCodes.RequestCancelled);
  assert.equal(streamMessages(parent, "$/stream/item", 21, "out").length, 2);
});

test("64 open streams per channel: the 65th opening request is answered -32009", async (t) => {
  const { worker, parent } = await connectedWorker(t);
  // countTo n=2, window 1: one item, then it waits for credit, its stream open.
  for (let id = 1001; id <= 1064; id++) parent.send({ jsonrpc: "2.0", id, method: "countTo", params: { n: 2, size: 0, "$/stream": { out: { window: 1 } } } });
  await parent.waitFor((m) => m.method === "$/stream/item" && params(m).stream === 1064, "the 64th stream's item");
  parent.send({ jsonrpc: "2.0", id: 1065, method: "countTo", params: { n: 2, size: 0, "$/stream": { out: { window: 1 } } } });
  assert.deepEqual(((await answerTo(parent, 1065)).error as Message).data, { limit: 64 });
  assert.equal(((await answerTo(parent, 1065)).error as Message).code, ErrorCodes.TooManyStreams);
  // Per channel: control still opens streams.
  assert.deepEqual((await worker.request("countTo", { n: 1, size: 0, "$/stream": { out: { window: 1 } } })).result, { count: 1 });
  // Credit to one stream ends it, and frees a place.
  parent.send(credit(1001, "out", 1));
  assert.deepEqual((await answerTo(parent, 1001)).result, { count: 2 });
  parent.send({ jsonrpc: "2.0", id: 1066, method: "countTo", params: { n: 1, size: 0, "$/stream": { out: { window: 1 } } } });
  assert.deepEqual((await answerTo(parent, 1066)).result, { count: 1 });
});

test("an output-stream item over the parent's max_frame_size is refused as the notification it is (PROTOCOL.md 12.1)", async (t) => {
  const directory = tempDirectory();
  const worker = new WorkerProcess(TEST_WORKER, { dataPath: join(directory.path, "d.sock"), env: { ASPECT_IPC_MAX_FRAME_SIZE: "1024" } });
  t.after(() => {
    worker.kill();
    directory.remove();
  });
  await worker.ready();
  const parent = await worker.openData();
  parent.send({ jsonrpc: "2.0", id: 7, method: "countTo", params: { n: 1, size: 2000, "$/stream": { out: { window: 16 } } } });
  const error = (await answerTo(parent, 7)).error as { code: number; message: string };
  assert.equal(error.code, ErrorCodes.HandlerError);
  assert.match(error.message, /^notification of \d+ bytes exceeds max_frame_size of 1024 bytes: raise max_frame_size or split the payload$/);
  assert.equal(streamMessages(parent, "$/stream/item", 7, "out").length, 0, "the item was never sent");
});
