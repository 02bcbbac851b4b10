/**
 * A float where a stream needs an integer (PROTOCOL.md 3.1, 13.1, 13.2, 13.5), against the real
 * test worker process, on each channel: the parent writes the float as a peer that keeps the kind
 * sends it (MessagePack float 64 on data, `4.0` on control). `window: 4.0` is answered -32602 and
 * opens nothing; `add: 1.0` and `seq: 0.0` are malformed messages that fail their open stream with
 * -32010; `stream: 7.0` names no stream and is dropped.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { ErrorCodes } from "@aspect-ipc/worker";

import { parentEnds, type Message, type ParentEnd } from "./helpers/tagged-parent.js";

const params = (message: Message): Message => (message.params ?? {}) as Message;
const answerTo = (end: ParentEnd, id: unknown): Promise<Message> => end.waitFor((m) => m.id === id && ("result" in m || "error" in m), `${end.name}: response ${String(id)}`);
const itemsOf = (end: ParentEnd, id: unknown): Message[] => end.received().filter((m) => m.method === "$/stream/item" && params(m).stream === id);
const errorOf = (answer: Message): Message => {
  assert.ok("error" in answer, `an error, not ${JSON.stringify(answer)}`);
  return answer.error as Message;
};

test("an opening request with window 4.0 is answered -32602 and opens no stream, on data and on control", async (t) => {
  for (const [index, end] of (await parentEnds(t)).entries()) {
    const id = 41 + index;
    end.sendTagged({ jsonrpc: "2.0", id, method: "countTo", params: { n: 2, size: 0, "$/stream": { out: { window: { $float: 4 } } } } });
    const error = errorOf(await answerTo(end, id));
    assert.equal(error.code, ErrorCodes.InvalidParams, `${end.name}: ${JSON.stringify(error)}`);
    assert.match(error.message as string, /window must be an integer/);
    // The same request with the integer opens its stream: only the float was refused.
    end.send({ jsonrpc: "2.0", id: id + 10, method: "countTo", params: { n: 2, size: 0, "$/stream": { out: { window: 4 } } } });
    assert.deepEqual((await answerTo(end, id + 10)).result, { count: 2 }, end.name);
    assert.equal(itemsOf(end, id).length, 0, `${end.name}: no item of the refused request`);
  }
});

test("a credit with add 1.0 is malformed: its output stream fails with -32010 at once, on data and on control", async (t) => {
  for (const [index, end] of (await parentEnds(t)).entries()) {
    const id = 43 + index;
    // Window 1, two items: the second waits for credit.
    end.send({ jsonrpc: "2.0", id, method: "countTo", params: { n: 2, size: 0, "$/stream": { out: { window: 1 } } } });
    await end.waitFor((m) => m.method === "$/stream/item" && params(m).stream === id, `${end.name}: the first item`);
    end.sendTagged({ jsonrpc: "2.0", method: "$/stream/credit", params: { stream: id, dir: "out", add: { $float: 1 } } });
    const error = errorOf(await answerTo(end, id));
    assert.equal(error.code, ErrorCodes.StreamProtocolError, `${end.name}: ${JSON.stringify(error)}`);
    assert.deepEqual(error.data, { stream: id, dir: "out" });
    assert.equal(itemsOf(end, id).length, 1, `${end.name}: nothing sent on the float credit`);
  }
});

test("an item with seq 0.0 fails its input stream with -32010; one with stream 7.0 names no stream and is dropped", async (t) => {
  for (const [index, end] of (await parentEnds(t)).entries()) {
    const dropped = 45 + 2 * index;
    end.send({ jsonrpc: "2.0", id: dropped, method: "sumStream", params: { "$/stream": { in: {} } } });
    await end.waitFor((m) => m.method === "$/stream/credit" && params(m).stream === dropped, `${end.name}: input credit`);
    end.sendTagged({ jsonrpc: "2.0", method: "$/stream/item", params: { stream: { $float: dropped }, dir: "in", seq: 0, value: 100 } });
    // The stream's own items, from seq 0: the one above never counted. An item's value keeps no kind: 4.0 is 4.
    end.sendTagged({ jsonrpc: "2.0", method: "$/stream/item", params: { stream: dropped, dir: "in", seq: 0, value: { $float: 4 } } });
    end.send({ jsonrpc: "2.0", method: "$/stream/end", params: { stream: dropped, dir: "in" } });
    assert.deepEqual(await answerTo(end, dropped), { jsonrpc: "2.0", id: dropped, result: 4 }, end.name);

    const failed = dropped + 1;
    end.send({ jsonrpc: "2.0", id: failed, method: "sumStream", params: { "$/stream": { in: {} } } });
    await end.waitFor((m) => m.method === "$/stream/credit" && params(m).stream === failed, `${end.name}: input credit`);
    end.sendTagged({ jsonrpc: "2.0", method: "$/stream/item", params: { stream: failed, dir: "in", seq: { $float: 0 }, value: 1 } });
    end.send({ jsonrpc: "2.0", method: "$/stream/end", params: { stream: failed, dir: "in" } });
    const error = errorOf(await answerTo(end, failed));
    assert.equal(error.code, ErrorCodes.StreamProtocolError, `${end.name}: ${JSON.stringify(error)}`);
    assert.deepEqual(error.data, { stream: failed, dir: "in" });
  }
});
