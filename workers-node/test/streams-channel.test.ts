/**
 * Streams on one channel in one process (a worker-side Channel and a raw peer on a Unix socket):
 * the handler API, `$/stream/*` handled at once, credit limits, a send that cannot be encoded,
 * and the channel closing under a waiting producer.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { ErrorCodes, RemoteError, type RequestContext } from "@aspect-ipc/worker";

import { channelWithRawPeer } from "./helpers/channels.js";

type Message = Record<string, unknown>;
const open = (id: unknown, method: string, stream: Message, params: Message = {}): Message => ({ jsonrpc: "2.0", id, method, params: { ...params, "$/stream": stream } });
const credit = (stream: unknown, add: number): Message => ({ jsonrpc: "2.0", method: "$/stream/credit", params: { stream, dir: "out", add } });

test("$/stream/credit is handled at once, not queued behind a busy notification handler", async (t) => {
  const { worker, peer, dispose } = await channelWithRawPeer();
  t.after(dispose);
  let release: () => void = () => undefined;
  worker.onNotification("busy", () => new Promise<void>((resolve) => (release = resolve)));
  let seen: unknown;
  worker.onRequest("count", async function* (params: unknown) {
    seen = params;
    yield "a";
    yield "b";
    return "done";
  });
  worker.start();
  await peer.sendAll([open(1, "count", { out: { window: 1 } }, { x: 1 }), { jsonrpc: "2.0", method: "busy" }, credit(1, 1)]);
  const messages = await peer.received(3);
  assert.deepEqual(
    messages.map((m) => (m.method === undefined ? m.result : (m.params as Message).value)),
    ["a", "b", "done"],
  );
  assert.deepEqual(seen, { x: 1 }, "the handler sees its params without $/stream");
  release();
});

test("credit above 1024 is a -32010 protocol error; the handler's own answer is dropped", async (t) => {
  const { worker, peer, dispose } = await channelWithRawPeer();
  t.after(dispose);
  let cancelled = false;
  worker.onRequest("hold", async function* (_params: unknown, { signal }: RequestContext) {
    try {
      yield 1;
      yield 2; // waits: window 1
    } finally {
      cancelled = signal.aborted;
    }
    return "late";
  });
  worker.start();
  await peer.send(open(7, "hold", { out: { window: 1 } }));
  await peer.received(1);
  await peer.send(credit(7, 1025)); // 0 + 1025: above 1024
  const messages = await peer.received(2);
  const error = messages[1]?.error as Message;
  assert.ok(error !== undefined, JSON.stringify(messages));
  assert.equal(error.code, ErrorCodes.StreamProtocolError);
  assert.deepEqual(error.data, { stream: 7, dir: "out" });
  assert.match(error.message as string, /stream 7 \(out\) on data: credit/);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(cancelled, "the handler was cancelled");
  assert.equal((await peer.received(2)).length, 2, "exactly one response");
});

test("a handler needing a stream the request did not open answers -32602", async (t) => {
  const { worker, peer, dispose } = await channelWithRawPeer();
  t.after(dispose);
  worker.onRequest("gen", async function* () {
    yield 1;
  });
  worker.onRequest("read", async (_params: unknown, context: RequestContext) => {
    for await (const value of context.input) return value;
    return null;
  });
  worker.start();
  await peer.send({ jsonrpc: "2.0", id: 1, method: "gen", params: {} });
  await peer.send({ jsonrpc: "2.0", id: 2, method: "read", params: {} });
  const messages = await peer.received(2);
  const byId = new Map(messages.map((m) => [m.id, m.error as Message]));
  assert.equal(byId.get(1)?.message, "Invalid params: gen needs an output stream ($/stream.out)");
  assert.equal(byId.get(2)?.message, "Invalid params: read needs an input stream ($/stream.in)");
});

test("an item that cannot be encoded raises in the handler and takes no credit; the stream stays open", async (t) => {
  const { worker, peer, dispose } = await channelWithRawPeer();
  t.after(dispose);
  let failure: unknown;
  worker.onRequest("mixed", async function* () {
    try {
      yield () => undefined; // a function has no MessagePack form
    } catch (error) {
      failure = error;
    }
    yield "ok";
    return 1;
  });
  worker.start();
  await peer.send(open(3, "mixed", { out: { window: 1 } }));
  const messages = await peer.received(2);
  assert.deepEqual(messages[0]?.params, { stream: 3, dir: "out", seq: 0, value: "ok" });
  assert.equal(messages[1]?.result, 1);
  assert.ok(failure instanceof Error && !(failure instanceof RemoteError), String(failure));
});

test("the channel closing under a producer waiting for credit: its send raises at once", async (t) => {
  const { worker, peer, dispose } = await channelWithRawPeer();
  t.after(dispose);
  let raised: (error: unknown) => void = () => undefined;
  const raisedPromise = new Promise<unknown>((resolve) => (raised = resolve));
  worker.onRequest("wait", async function* () {
    try {
      yield 0;
      yield 1; // no credit left
    } catch (error) {
      raised(error);
      throw error;
    }
  });
  worker.start();
  await peer.send(open(4, "wait", { out: { window: 1 } }));
  await peer.received(1);
  await worker.close();
  const error = await raisedPromise;
  assert.ok(error instanceof Error, String(error));
});
