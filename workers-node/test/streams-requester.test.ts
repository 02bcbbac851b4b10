/**
 * The Node SDK as the requester of streams (PROTOCOL.md 13): a channel calling its peer's handlers
 * with an output stream (`channel.stream`), an input stream (`request(..., { input })`) or both,
 * over a real Unix socket between two channels, and from a worker process to a test parent; and a
 * raw peer that breaks the rules (13.5).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";

import { ErrorCodes, RemoteError, type Channel, type RequestContext } from "@aspect-ipc/worker";

import { channelPair, channelWithRawPeer } from "./helpers/channels.js";
import { WorkerProcess, fixture, tempDirectory } from "./helpers/parent.js";

/** countTo / sumStream / echoStream / failAfter on `channel` (the parent's handlers, say). */
function serve(channel: Channel, seen: { cancelled: boolean; sent: number }): void {
  channel.onRequest("countTo", async function* (params: { n: number }, { signal }: RequestContext) {
    try {
      for (let i = 0; i < params.n; i++) {
        yield i;
        seen.sent++;
      }
    } finally {
      seen.cancelled = signal.aborted;
    }
    return { count: params.n };
  });
  channel.onRequest("sumStream", async (_params: unknown, { input }: RequestContext) => {
    let sum = 0;
    for await (const item of input) sum += item as number;
    return sum;
  });
  channel.onRequest("echoStream", async function* (_params: unknown, { input }: RequestContext) {
    let count = 0;
    for await (const item of input) {
      yield item;
      count++;
    }
    return { count };
  });
  channel.onRequest("failAfter", async function* () {
    yield "one";
    throw new RemoteError(4001, "disk gone", { path: "/x" });
  });
}

async function pair(t: { after(fn: () => Promise<void>): void }): Promise<{ worker: Channel; seen: { cancelled: boolean; sent: number } }> {
  const { worker, parent, dispose } = await channelPair();
  t.after(dispose);
  const seen = { cancelled: false, sent: 0 };
  serve(parent, seen);
  worker.start();
  parent.start();
  return { worker, seen };
}

test("stream(): the items in order, then call.result is the final value, for any window", async (t) => {
  const { worker } = await pair(t);
  for (const window of [1, 2, 16, 1024]) {
    const call = worker.stream("countTo", { n: 40 }, { window });
    const items: unknown[] = [];
    for await (const item of call) items.push(item);
    assert.deepEqual(items, Array.from({ length: 40 }, (_, i) => i), `window ${window}`);
    assert.deepEqual(call.result, { count: 40 });
  }
});

test("request(..., { input }) sends an iterable or an async iterable; the result once consumed", async (t) => {
  const { worker } = await pair(t);
  const numbers = Array.from({ length: 100 }, (_, i) => i);
  assert.equal(await worker.request("sumStream", {}, { input: numbers }), 4950);
  async function* source(): AsyncGenerator<number> {
    for (const n of numbers) yield n;
  }
  assert.equal(await worker.request("sumStream", undefined, { input: source() }), 4950);
});

test("both directions: stream() with input echoes every item", async (t) => {
  const { worker } = await pair(t);
  const call = worker.stream("echoStream", {}, { window: 2, input: ["a", "b", "c", "d", "e"] });
  const items: unknown[] = [];
  for await (const item of call) items.push(item);
  assert.deepEqual(items, ["a", "b", "c", "d", "e"]);
  assert.deepEqual(call.result, { count: 5 });
});

test("breaking out of the loop cancels the producer", async (t) => {
  const { worker, seen } = await pair(t);
  for await (const item of worker.stream("countTo", { n: 1_000_000 }, { window: 4 })) {
    if (item === 2) break;
  }
  for (let waited = 0; !seen.cancelled && waited < 2000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(seen.cancelled, "the handler's signal aborted");
  assert.ok(seen.sent < 20, `the producer stopped near the window, sent ${seen.sent}`);
  assert.equal(await worker.request("sumStream", {}, { input: [1, 2] }), 3, "the channel goes on");
});

test("an error response ends the stream after the items sent before it", async (t) => {
  const { worker } = await pair(t);
  const items: unknown[] = [];
  await assert.rejects(
    async () => {
      for await (const item of worker.stream("failAfter")) items.push(item);
    },
    (error: unknown) => error instanceof RemoteError && error.code === 4001 && error.message === "disk gone",
  );
  assert.deepEqual(items, ["one"]);
});

test("an input iterable that throws ends the stream with $/stream/error: the handler's read raises it", async (t) => {
  const { worker } = await pair(t);
  async function* broken(): AsyncGenerator<number> {
    yield 1;
    throw new Error("source failed");
  }
  await assert.rejects(worker.request("sumStream", {}, { input: broken() }), (error: unknown) => {
    return error instanceof RemoteError && error.code === ErrorCodes.HandlerError && /source failed/.test(error.message);
  });
});

test("bad arguments are refused before anything is sent", async (t) => {
  const { worker } = await pair(t);
  await assert.rejects(async () => {
    for await (const _ of worker.stream("countTo", { n: 1 }, { window: 0 })) void _;
  }, RangeError);
  await assert.rejects(worker.request("sumStream", [1], { input: [] }), TypeError);
  await assert.rejects(worker.request("sumStream", { "$/stream": {} }, { input: [] }), TypeError);
});

for (const method of ["$/stream/end", "$/stream/error"]) {
  test(`${method} with dir out fails our output stream with -32010 and cancels the request (13.5)`, async (t) => {
    const { worker, peer, dispose } = await channelWithRawPeer();
    t.after(dispose);
    worker.start();
    const call = worker.stream("countTo", { n: 3 }, { window: 4 });
    const iterator = call[Symbol.asyncIterator]();
    const first = iterator.next().then(
      (step) => ({ step }),
      (error: unknown) => ({ error }),
    );
    const [request] = await peer.received(1);
    const id = request?.id;
    const extra = method === "$/stream/error" ? { error: { code: -32000, message: "x" } } : {};
    await peer.sendAll([
      { jsonrpc: "2.0", method: "$/stream/item", params: { stream: id, dir: "out", seq: 0, value: 0 } },
      { jsonrpc: "2.0", method, params: { stream: id, dir: "out", ...extra } },
    ]);
    const messages = await peer.received(2);
    assert.deepEqual(messages[1], { jsonrpc: "2.0", method: "$/cancelRequest", params: { id } });
    const check = (error: unknown): boolean => {
      const e = error as RemoteError;
      return e.code === ErrorCodes.StreamProtocolError && e.message === `stream ${String(id)} (out) on data: ${method} is sent for input streams only`;
    };
    // The item may have been taken before the failure arrived (two reads): then the next step raises it.
    const outcome = await first;
    if ("step" in outcome) {
      assert.deepEqual(outcome.step, { done: false, value: 0 });
      await assert.rejects(iterator.next(), check);
    } else assert.ok(check(outcome.error), String(outcome.error));
    await peer.send({ jsonrpc: "2.0", id, result: { count: 1 } }); // dropped
    assert.equal((await peer.received(2)).length, 2, "nothing more sent");
  });
}

test("a requester over 64 open streams fails locally with -32009", async (t) => {
  const { worker, peer, dispose } = await channelWithRawPeer();
  t.after(dispose);
  worker.start();
  const iterators = Array.from({ length: 64 }, () => worker.stream("countTo", { n: 1 })[Symbol.asyncIterator]());
  const pending = iterators.map((iterator) => iterator.next());
  await peer.received(64);
  const extra = worker.stream("countTo", { n: 1 })[Symbol.asyncIterator]();
  await assert.rejects(extra.next(), (error: unknown) => error instanceof RemoteError && error.code === ErrorCodes.TooManyStreams);
  for (const iterator of iterators) await iterator.return?.();
  await Promise.allSettled(pending);
});

test("a worker process calls its parent with an output stream, then an input stream", async (t) => {
  const directory = tempDirectory();
  const process = new WorkerProcess(fixture("stream-caller"), { dataPath: join(directory.path, "d.sock") });
  t.after(() => {
    process.kill();
    directory.remove();
  });
  await process.ready();
  const parent = await process.openData();
  const params = (message: Record<string, unknown>): Record<string, unknown> => message.params as Record<string, unknown>;
  parent.send({ jsonrpc: "2.0", id: "call-1", method: "callParent" });
  const rows = await parent.waitFor((m) => m.method === "rows", "the worker's rows request");
  assert.deepEqual(rows.params, { n: 3, "$/stream": { out: { window: 2 } } });
  const item = (seq: number): Record<string, unknown> => ({ jsonrpc: "2.0", method: "$/stream/item", params: { stream: rows.id, dir: "out", seq, value: seq } });
  parent.send(item(0));
  parent.send(item(1)); // the window is full: the next item needs the worker's credit
  await parent.waitFor((m) => m.method === "$/stream/credit" && params(m).stream === rows.id && params(m).dir === "out", "credit for rows");
  parent.send(item(2));
  parent.send({ jsonrpc: "2.0", id: rows.id, result: { count: 3 } });
  const store = await parent.waitFor((m) => m.method === "store", "the worker's store request");
  assert.deepEqual(store.params, { "$/stream": { in: {} } });
  parent.send({ jsonrpc: "2.0", method: "$/stream/credit", params: { stream: store.id, dir: "in", add: 16 } });
  await parent.waitFor((m) => m.method === "$/stream/end" && params(m).stream === store.id, "the end of the input stream");
  const items = parent.messages.items.filter((m) => m.method === "$/stream/item" && params(m).stream === store.id && params(m).dir === "in");
  assert.deepEqual(
    items.map((m) => [params(m).seq, params(m).value]),
    [
      [0, "a"],
      [1, "b"],
      [2, "c"],
    ],
  );
  parent.send({ jsonrpc: "2.0", id: store.id, result: "stored 3" });
  const answer = await parent.waitFor((m) => m.id === "call-1" && ("result" in m || "error" in m), "the answer to callParent");
  assert.deepEqual(answer.result, { rows: [0, 1, 2], final: { count: 3 }, stored: "stored 3" });
});
