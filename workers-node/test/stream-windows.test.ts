/**
 * Per-handler input windows (PROTOCOL.md 13.3): `onRequest(method, handler, { inputWindow })`
 * grants that window as the first credit; a value out of range is refused at registration. And
 * `$/stream/end`/`$/stream/error` with `dir: "out"` reaching a responder (13.5): dropped.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { ErrorCodes, type RequestContext } from "@aspect-ipc/worker";

import { channelWithRawPeer, type RawPeer } from "./helpers/channels.js";

type Message = Record<string, unknown>;
const note = (method: string, params: Message): Message => ({ jsonrpc: "2.0", method, params });

async function sum(_params: unknown, { input }: RequestContext): Promise<number> {
  let total = 0;
  for await (const item of input) total += item as number;
  return total;
}

/**
 * Opens an input stream on `method` (request `id`, the peer's `id`-th exchange of two messages),
 * returns the first credit, then ends the stream and checks the answer.
 */
async function firstGrant(peer: RawPeer, id: number, method: string): Promise<number> {
  const before = (id - 1) * 2; // received() returns every message so far
  await peer.send({ jsonrpc: "2.0", id, method, params: { "$/stream": { in: {} } } });
  const grant = (await peer.received(before + 1))[before] ?? {};
  assert.equal(grant.method, "$/stream/credit", JSON.stringify(grant));
  const params = grant.params as Message;
  assert.deepEqual([params.stream, params.dir], [id, "in"]);
  await peer.send(note("$/stream/end", { stream: id, dir: "in" }));
  const answer = (await peer.received(before + 2))[before + 1];
  assert.deepEqual(answer, { jsonrpc: "2.0", id, result: 0 });
  return params.add as number;
}

test("a handler's inputWindow is the first credit it grants; without one, 16", async (t) => {
  const { worker, peer, dispose } = await channelWithRawPeer();
  t.after(dispose);
  worker.onRequest("sumFour", sum, { inputWindow: 4 });
  worker.onRequest("sumMax", sum, { inputWindow: 1024 });
  worker.onRequest("sumDefault", sum);
  worker.start();
  assert.equal(await firstGrant(peer, 1, "sumFour"), 4);
  assert.equal(await firstGrant(peer, 2, "sumMax"), 1024);
  assert.equal(await firstGrant(peer, 3, "sumDefault"), 16);
  worker.onRequest("sumFour", sum); // registered again without the option: the default
  assert.equal(await firstGrant(peer, 4, "sumFour"), 16);
});

test("an inputWindow out of range is refused at registration, naming the handler", async (t) => {
  const { worker, peer, dispose } = await channelWithRawPeer();
  t.after(dispose);
  for (const bad of [0, -1, 1025, 2.5, Number.NaN, "4" as unknown as number]) {
    assert.throws(
      () => worker.onRequest("sumStream", sum, { inputWindow: bad }),
      (error: unknown) => error instanceof RangeError && /handler "sumStream": inputWindow must be an integer from 1 to 1024/.test(error.message),
      `inputWindow ${String(bad)}`,
    );
  }
  worker.start();
  await peer.send({ jsonrpc: "2.0", id: 1, method: "sumStream", params: { "$/stream": { in: {} } } });
  const [answer] = await peer.received(1);
  assert.equal((answer?.error as Message | undefined)?.code, ErrorCodes.MethodNotFound, "nothing was registered");
});

test("$/stream/end and $/stream/error with dir out reaching a responder are dropped (13.5)", async (t) => {
  const { worker, peer, dispose } = await channelWithRawPeer();
  t.after(dispose);
  worker.onRequest("countTo", async function* () {
    yield 0;
    return { count: 1 };
  });
  worker.start();
  await peer.sendAll([
    { jsonrpc: "2.0", id: 23, method: "countTo", params: { n: 1, "$/stream": { out: { window: 2 } } } },
    note("$/stream/end", { stream: 23, dir: "out" }),
    note("$/stream/error", { stream: 23, dir: "out", error: { code: -32000, message: "x" } }),
  ]);
  const messages = await peer.received(2);
  assert.deepEqual(messages, [
    note("$/stream/item", { stream: 23, dir: "out", seq: 0, value: 0 }),
    { jsonrpc: "2.0", id: 23, result: { count: 1 } },
  ]);
});
