/**
 * Spec 1.1 rules over the wire, against the real test worker process: exact integers and -0.0 on
 * control (D9), `__proto__` keys (D5), float ids (D6), recovered ids (D10), the nesting limit
 * (D11) and the test worker's own contract (D18).
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { ErrorCodes, LengthPrefixedFraming } from "@aspect-ipc/worker";

import { connectedWorker, type WorkerProcess } from "./helpers/parent.js";

/** The raw control line the worker wrote for `id` (the helper's JSON.parse would round big integers). */
async function rawLine(worker: WorkerProcess, id: number): Promise<string> {
  const stdout: string[] = [];
  const listener = (chunk: Buffer): void => void stdout.push(chunk.toString("utf8"));
  worker.child.stdout.on("data", listener);
  await worker.waitControl((m) => m.id === id, `response ${id}`);
  worker.child.stdout.off("data", listener);
  const line = stdout.join("").split("\n").find((entry) => entry.includes(`"id":${id},`));
  assert.ok(line !== undefined, stdout.join(""));
  return line;
}

test("control: integers beyond 2^53 and -0.0 are echoed exactly (D9)", async (t) => {
  const { worker } = await connectedWorker(t);
  worker.writeRaw('{"jsonrpc":"2.0","id":41,"method":"echo","params":[18446744073709551615,-9223372036854775808,9007199254740993,-0.0,1.5]}\n');
  assert.equal(await rawLine(worker, 41), '{"jsonrpc":"2.0","id":41,"result":[18446744073709551615,-9223372036854775808,9007199254740993,-0.0,1.5]}');
  worker.writeRaw('{"jsonrpc":"2.0","id":42,"method":"echo","params":[18446744073709551616]}\n');
  const outOfRange = await worker.waitControl((m) => m.id === 42, "the refusal");
  assert.equal((outOfRange.error as { code: number }).code, ErrorCodes.ParseError, "answered with the recovered id");
});

test("data: -0.0 is echoed as float 64 -0.0 (D9)", async (t) => {
  const { parent } = await connectedWorker(t);
  const result = (await parent.request("echo", [-0, 0])).result as number[];
  assert.ok(Object.is(result[0], -0) && Object.is(result[1], 0));
});

test("__proto__, constructor and prototype keys round-trip on both channels (D5)", async (t) => {
  const { worker, parent } = await connectedWorker(t);
  worker.writeRaw('{"jsonrpc":"2.0","id":43,"method":"echo","params":{"__proto__":1,"a":2,"constructor":{"prototype":3}}}\n');
  assert.equal(await rawLine(worker, 43), '{"jsonrpc":"2.0","id":43,"result":{"__proto__":1,"a":2,"constructor":{"prototype":3}}}');
  const params = JSON.parse('{"__proto__":1,"a":2}') as Record<string, unknown>;
  const echoed = (await parent.request("echo", params)).result as Record<string, unknown>;
  assert.deepEqual(Object.keys(echoed), ["__proto__", "a"]);
  assert.equal(Object.getOwnPropertyDescriptor(echoed, "__proto__")?.value, 1);
});

test("a float id is never an id (D6): -32600 with id null, on control (1.0, 1e0) and on data (float 64)", async (t) => {
  const { worker, parent } = await connectedWorker(t);
  for (const id of ["1.0", "1e0"]) {
    const before = worker.control.items.length;
    worker.writeRaw(`{"jsonrpc":"2.0","id":${id},"method":"add","params":{"a":1,"b":1}}\n`);
    const answer = await worker.waitControl((m) => worker.control.items.indexOf(m) >= before && "error" in m, `the answer to id ${id}`);
    assert.equal(answer.id, null);
    assert.equal((answer.error as { code: number }).code, ErrorCodes.InvalidRequest);
  }
  // {"jsonrpc":"2.0","id":1.0,"method":"m"} in MessagePack, the id a float 64.
  parent.writeRaw(new LengthPrefixedFraming().encode(Buffer.from("83a76a736f6e727063a3322e30a26964cb3ff0000000000000a66d6574686f64a16d", "hex")));
  const answer = await parent.waitFor((m) => m.id === null, "the answer to the float id");
  assert.equal((answer.error as { code: number }).code, ErrorCodes.InvalidRequest);
});

test("a message refused for its content is answered -32700 with its id (D10), nesting over 512 included (D11)", async (t) => {
  const { worker, parent } = await connectedWorker(t);
  worker.writeRaw('{"jsonrpc":"2.0","id":44,"method":"echo","params":["\\ud800"]}\n');
  const surrogate = await worker.waitControl((m) => m.id === 44, "the lone surrogate's answer");
  assert.equal((surrogate.error as { code: number }).code, ErrorCodes.ParseError);
  const deep = `${"[".repeat(511)}${"]".repeat(511)}`;
  worker.writeRaw(`{"jsonrpc":"2.0","id":45,"method":"echo","params":${deep}}\n`);
  assert.equal((await worker.waitControl((m) => m.id === 45, "depth 512")).error, undefined, "depth 512 is fine");
  worker.writeRaw(`{"jsonrpc":"2.0","id":46,"method":"echo","params":[${deep}]}\n`);
  assert.equal(((await worker.waitControl((m) => m.id === 46, "depth 513")).error as { code: number }).code, ErrorCodes.ParseError);
  // MessagePack: {"id": 7, "method": "m", "params": <ext>}
  parent.writeRaw(new LengthPrefixedFraming().encode(Buffer.from("83a2696407a66d6574686f64a16da6706172616d73d6ff00000001", "hex")));
  assert.equal(((await parent.waitFor((m) => m.id === 7, "the ext's answer")).error as { code: number }).code, ErrorCodes.ParseError);
  assert.deepEqual((await parent.request("add", { a: 1, b: 1 })).result, 2);
});

test("test worker contract (D18): exact add, overflow and bad params are -32602, spin answers its pid", async (t) => {
  const { worker, parent } = await connectedWorker(t);
  assert.equal((await parent.request("add", { a: 2n ** 62n, b: 2n ** 62n - 1n })).result, 2n ** 63n - 1n);
  assert.equal((await parent.request("add", { a: 1.5, b: 2 })).result, 3.5);
  for (const params of [{ a: 2n ** 62n, b: 2n ** 62n }, { a: 1 }, { a: "1", b: 2 }, [1, 2]]) {
    const answer = await parent.request("add", params);
    assert.equal((answer.error as { code: number }).code, ErrorCodes.InvalidParams, JSON.stringify(params, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v)));
  }
  worker.writeRaw('{"jsonrpc":"2.0","id":47,"method":"add","params":{"a":9223372036854775000,"b":807}}\n');
  assert.equal(await rawLine(worker, 47), '{"jsonrpc":"2.0","id":47,"result":9223372036854775807}');
  assert.match(((await worker.request("sleep", {})).error as { message: string }).message, /"seconds" must be a number of seconds, got nothing/);
  assert.deepEqual((await parent.request("spin", { microseconds: 1000 })).result, { pid: worker.child.pid });
  assert.equal((await parent.request("sleepBusy", { seconds: 0.01 })).result, "done");
});
