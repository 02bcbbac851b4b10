/**
 * A float where the protocol needs an integer, outside streams (PROTOCOL.md 3.1, 4.2, 9.1), against
 * the real test worker process, on each channel: the parent writes the float as a peer that keeps
 * the kind sends it (MessagePack float 64 on data, `7.0` on control). `$/cancelRequest` with
 * `id: 7.0` cancels nothing (a float is never an id); an error response whose `code` is `-32000.0`
 * is an invalid response, which fails the request it answers with a local protocol error instead
 * of passing for an ordinary error -32000.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { ErrorCodes } from "@aspect-ipc/worker";

import { parentEnds, type Message, type ParentEnd } from "./helpers/tagged-parent.js";

const answerTo = (end: ParentEnd, id: unknown, after?: Message): Promise<Message> =>
  end.waitFor((m) => m.id === id && ("result" in m || "error" in m) && m !== after, `${end.name}: response ${String(id)}`);
const errorOf = (answer: Message): Message => {
  assert.ok("error" in answer, `an error, not ${JSON.stringify(answer)}`);
  return answer.error as Message;
};

test("$/cancelRequest with id 7.0 does not cancel request 7; with id 7 it does, on data and on control", async (t) => {
  const ends = await parentEnds(t);
  const control = ends.find((end) => end.name === "control") as ParentEnd;
  const observed = (tag: string): boolean => control.received().some((m) => m.method === "cancelObserved" && (m.params as Message | undefined)?.tag === tag);
  for (const end of ends) {
    const kept = `kept-${end.name}`;
    end.send({ jsonrpc: "2.0", id: 7, method: "sleep", params: { seconds: 0.5, tag: kept } });
    end.sendTagged({ jsonrpc: "2.0", method: "$/cancelRequest", params: { id: { $float: 7 } } });
    const finished = await answerTo(end, 7);
    assert.deepEqual(finished, { jsonrpc: "2.0", id: 7, result: "done" }, `${end.name}: the sleep ran to its end`);
    assert.ok(!observed(kept), `${end.name}: no cancellation observed`);

    // The same request, cancelled by the integer id.
    const cancelled = `cancelled-${end.name}`;
    end.send({ jsonrpc: "2.0", id: 7, method: "sleep", params: { seconds: 30, tag: cancelled } });
    end.sendTagged({ jsonrpc: "2.0", method: "$/cancelRequest", params: { id: 7 } });
    const error = errorOf(await answerTo(end, 7, finished));
    assert.equal(error.code, ErrorCodes.RequestCancelled, `${end.name}: ${JSON.stringify(error)}`);
    await control.waitFor(() => observed(cancelled), `${end.name}: cancelObserved`);
  }
});

test("an error response with code -32000.0 fails the worker's request to the parent with a protocol error, on data and on control", async (t) => {
  for (const [index, end] of (await parentEnds(t)).entries()) {
    const id = 21 + 2 * index;
    const method = `parentMethod-${end.name}`;
    const callOf = (callerId: number): Promise<Message> =>
      end.waitFor((m) => m.method === method && "id" in m && (m.params as Message | undefined)?.n === callerId, `${end.name}: the worker's request`);

    // An integer code: an ordinary error from the parent, its code and message passed on.
    end.send({ jsonrpc: "2.0", id, method: "callParent", params: { method, params: { n: id }, via: end.name } });
    end.send({ jsonrpc: "2.0", id: (await callOf(id)).id as number, error: { code: -32000, message: "m" } });
    assert.deepEqual(errorOf(await answerTo(end, id)), { code: -32000, message: "m" }, end.name);

    // The float: not an error response at all, but an invalid one.
    end.send({ jsonrpc: "2.0", id: id + 1, method: "callParent", params: { method, params: { n: id + 1 }, via: end.name } });
    end.sendTagged({ jsonrpc: "2.0", id: (await callOf(id + 1)).id, error: { code: { $float: -32000 }, message: "m" } });
    const error = errorOf(await answerTo(end, id + 1));
    assert.equal(error.code, ErrorCodes.HandlerError, `${end.name}: ${JSON.stringify(error)}`);
    assert.equal((error.data as Message | undefined)?.type, "ProtocolError", `${end.name}: ${JSON.stringify(error)}`);
    assert.match(error.message as string, /invalid response.*error\.code/, end.name);
  }
});
