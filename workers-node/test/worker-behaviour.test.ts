/**
 * What handlers can do, against the real test worker process: both channels, binary, errors,
 * stray stdout, cancellation, calling and notifying the parent, the token kept from children, and
 * bad input on either channel.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test, type TestContext } from "node:test";

import { ErrorCodes, LengthPrefixedFraming, MessagePackCodec } from "@aspect-ipc/worker";

import { TEST_WORKER, WorkerProcess, tempDirectory, type DataConnection } from "./helpers/parent.js";

async function connectedWorker(t: TestContext, env: Record<string, string | undefined> = {}): Promise<{ worker: WorkerProcess; parent: DataConnection }> {
  const directory = tempDirectory();
  const worker = new WorkerProcess(TEST_WORKER, { dataPath: join(directory.path, "d.sock"), env });
  t.after(() => {
    worker.kill();
    directory.remove();
  });
  await worker.ready();
  return { worker, parent: await worker.openData() };
}

test("the same methods answer on both channels; binary stays binary on data", async (t) => {
  const { worker, parent } = await connectedWorker(t);
  const blob = new Uint8Array([0, 255, 10, 13]);
  assert.deepEqual((await parent.request("echo", { blob, big: 2n ** 64n - 1n, f: 0.5 })).result, { blob, big: 2n ** 64n - 1n, f: 0.5 });
  assert.deepEqual((await worker.request("echo", { text: "héllo ✓", n: [1, 2.5] })).result, { text: "héllo ✓", n: [1, 2.5] });
  assert.deepEqual((await worker.request("info")).result, { language: "node", pid: worker.child.pid });
  assert.deepEqual((await parent.request("info")).result, { language: "node", pid: worker.child.pid });
  assert.deepEqual((await worker.request("$/ping")).result, {});
  assert.deepEqual((await parent.request("$/ping")).result, {});
});

test("fail: -32000 with data.type for a plain error, the given code and data for a typed one", async (t) => {
  const { worker, parent } = await connectedWorker(t);
  const failed = (await worker.request("fail", { message: "boom" })).error as { data: { traceback: string } };
  assert.match(failed.data.traceback, /^Error: boom\n {4}at /); // err.stack (PROTOCOL.md 4.10)
  assert.deepEqual({ ...failed, data: { ...failed.data, traceback: undefined } }, { code: -32000, message: "boom", data: { type: "Error", traceback: undefined } });
  assert.deepEqual((await parent.request("fail", { message: "nope", code: 4001, data: { why: [1] } })).error, {
    code: 4001,
    message: "nope",
    data: { why: [1] },
  });
  assert.deepEqual((await parent.request("missing")).error, { code: ErrorCodes.MethodNotFound, message: "Method not found: missing" });
});

test("a control result JSON cannot carry (binary) is answered -32603 instead of being corrupted", async (t) => {
  const { worker, parent } = await connectedWorker(t);
  // The parent hands the worker bytes on data; the worker returns them on control, where JSON has no form for them.
  const answerData = parent
    .waitFor((m) => m.method === "giveBytes", "worker's data request")
    .then((request) => parent.send({ jsonrpc: "2.0", id: request.id as number, result: new Uint8Array([1, 2]) }));
  const answer = await worker.request("callParent", { method: "giveBytes", via: "data" });
  await answerData;
  const error = answer.error as { code: number; message: string };
  assert.equal(error.code, ErrorCodes.InternalError);
  assert.match(error.message, /binary data .* binary has no JSON form/);
  assert.deepEqual((await worker.request("add", { a: 1, b: 1 })).result, 2);
});

test("console.log in a handler goes to stderr and never corrupts the control channel", async (t) => {
  const { worker, parent } = await connectedWorker(t);
  assert.deepEqual((await worker.request("print", { text: "hello from console.log" })).result, null);
  assert.deepEqual((await parent.request("print", { text: "{\"jsonrpc\":\"2.0\",\"id\":99,\"result\":1}" })).result, null);
  assert.deepEqual((await worker.request("stderr", { text: "plain stderr" })).result, null);
  await worker.waitStderr("plain stderr\n");
  assert.ok(worker.stderr.includes("hello from console.log\n"));
  assert.ok(worker.stderr.includes("{\"jsonrpc\":\"2.0\",\"id\":99,\"result\":1}\n"));
  assert.ok(worker.control.items.every((message) => !("raw" in message)), "every stdout line is protocol JSON");
  assert.ok(worker.control.items.every((message) => message.id !== 99), "the printed JSON did not reach stdout");
});

test("junk written to fd 1 before the SDK starts reaches the parent as a non-JSON line, then the protocol works", async (t) => {
  const { worker } = await connectedWorker(t, { TEST_JUNK_STDOUT: "native library banner" });
  assert.deepEqual(worker.control.items[0], { raw: "native library banner" });
  assert.deepEqual((await worker.request("add", { a: 1, b: 2 })).result, 3);
});

test("$/cancelRequest reaches the handler's AbortSignal on either channel", async (t) => {
  const { worker, parent } = await connectedWorker(t);

  parent.send({ jsonrpc: "2.0", id: 50, method: "sleep", params: { seconds: 60, tag: "data-sleep" } });
  parent.send({ jsonrpc: "2.0", method: "$/cancelRequest", params: { id: 50 } });
  const dataAnswer = await parent.waitFor((m) => m.id === 50, "cancelled data sleep");
  assert.equal((dataAnswer.error as { code: number }).code, ErrorCodes.RequestCancelled);
  const observed = await worker.waitControl((m) => m.method === "cancelObserved", "cancelObserved");
  assert.deepEqual(observed.params, { tag: "data-sleep" });

  worker.send({ jsonrpc: "2.0", id: "s1", method: "sleep", params: { seconds: 60, tag: "control-sleep" } });
  worker.send({ jsonrpc: "2.0", method: "$/cancelRequest", params: { id: "s1" } });
  const controlAnswer = await worker.waitControl((m) => m.id === "s1", "cancelled control sleep");
  assert.equal((controlAnswer.error as { code: number }).code, ErrorCodes.RequestCancelled);
  await worker.waitControl((m) => m.method === "cancelObserved" && (m.params as { tag: string }).tag === "control-sleep", "second cancelObserved");
});

test("a slow handler does not hold up other requests on the same channel", async (t) => {
  const { worker, parent } = await connectedWorker(t);
  parent.send({ jsonrpc: "2.0", id: 60, method: "sleep", params: { seconds: 60, tag: "slow" } });
  assert.deepEqual((await parent.request("add", { a: 20, b: 22 })).result, 42);
  assert.ok(!parent.messages.items.some((m) => m.id === 60), "the sleep is still running");
  assert.deepEqual((await worker.request("add", { a: 1, b: 1 })).result, 2);
});

test("the worker calls and notifies the parent on either channel, from inside a handler", async (t) => {
  const { worker, parent } = await connectedWorker(t);

  // The parent answers the worker's requests: on control through stdin, on data through the socket.
  const answerControl = worker
    .waitControl((m) => m.method === "parentMethod", "worker's control request")
    .then((request) => worker.send({ jsonrpc: "2.0", id: request.id, result: { got: request.params, via: "control" } }));
  const viaControl = await worker.request("callParent", { method: "parentMethod", params: { x: 1 }, via: "control" });
  await answerControl;
  assert.deepEqual(viaControl.result, { got: { x: 1 }, via: "control" });

  const answerData = parent
    .waitFor((m) => m.method === "parentMethod", "worker's data request")
    .then((request) => parent.send({ jsonrpc: "2.0", id: request.id as number, result: { got: request.params, via: "data" } }));
  const viaData = await parent.request("callParent", { method: "parentMethod", params: [new Uint8Array([7])], via: "data" });
  await answerData;
  assert.deepEqual(viaData.result, { got: [new Uint8Array([7])], via: "data" });

  const failing = parent
    .waitFor((m) => m.method === "parentFails", "worker's failing request")
    .then((request) => parent.send({ jsonrpc: "2.0", id: request.id as number, error: { code: 4040, message: "parent says no" } }));
  const failed = await parent.request("callParent", { method: "parentFails", via: "data" });
  await failing;
  assert.deepEqual(failed.error, { code: 4040, message: "parent says no" });

  assert.deepEqual((await parent.request("notifyParent", { method: "hey", params: { n: 1 }, via: "control" })).result, null);
  assert.deepEqual((await worker.waitControl((m) => m.method === "hey", "control notification")).params, { n: 1 });
  assert.deepEqual((await worker.request("notifyParent", { method: "hey", params: { n: 2 }, via: "data" })).result, null);
  const notification = await parent.waitFor((m) => m.method === "hey", "data notification");
  assert.deepEqual(notification, { jsonrpc: "2.0", method: "hey", params: { n: 2 } });
});

test("the token is removed from the worker's environment, so children never see it", async (t) => {
  const { worker, parent } = await connectedWorker(t);
  assert.equal((await parent.request("getEnv", { name: "ASPECT_IPC_TOKEN" })).result, null);
  assert.equal((await parent.request("childEnv", { name: "ASPECT_IPC_TOKEN" })).result, null);
  assert.equal((await worker.request("getEnv", { name: "ASPECT_IPC_WORKER_ID" })).result, "worker-1");
  assert.equal((await worker.request("childEnv", { name: "ASPECT_IPC_WORKER_ID" })).result, "worker-1");
});

test("bad bytes on the data channel: -32700 for a frame that is not MessagePack, and the connection stays", async (t) => {
  const { parent } = await connectedWorker(t);
  const json = new TextEncoder().encode('{"a":1}');
  parent.writeRaw(new LengthPrefixedFraming().encode(json));
  const answer = await parent.waitFor((m) => m.id === null, "parse error");
  const error = answer.error as { code: number; message: string };
  assert.equal(error.code, ErrorCodes.ParseError);
  assert.match(error.message, /^Parse error: frame is not valid MessagePack .*do both sides use MessagePackCodec\?$/);
  parent.writeRaw(new LengthPrefixedFraming().encode(Uint8Array.of(0xd6, 0xff, 0, 0, 0, 1))); // a timestamp ext
  await parent.waitFor((m) => m.id === null && m !== answer, "second parse error");
  parent.writeRaw(new LengthPrefixedFraming().encode(new MessagePackCodec().encode({ jsonrpc: "2.0", id: 3, method: 7 })));
  assert.equal(((await parent.waitFor((m) => m.id === 3, "invalid request")).error as { code: number }).code, ErrorCodes.InvalidRequest);
  assert.deepEqual((await parent.request("add", { a: 1, b: 1 })).result, 2);
});

test("bad lines on the control channel: parse errors, over-long lines and invalid UTF-8 are answered, reading goes on", async (t) => {
  const { worker } = await connectedWorker(t);
  worker.writeRaw("this is not json\n");
  worker.writeRaw(`{"jsonrpc":"2.0","id":1,"method":"echo","params":["${"x".repeat(1_100_000)}"]}\n`);
  worker.writeRaw(Buffer.concat([Buffer.from('["'), Buffer.from([0xff]), Buffer.from('"]\n')]));
  worker.writeRaw("\r\n   \n"); // blank lines: ignored
  worker.writeRaw('{"jsonrpc":"2.0","id":2,"method":"add","params":{"a":2,"b":3}}\r\n');
  const answer = await worker.waitControl((m) => m.id === 2, "the request after the bad lines");
  assert.equal(answer.result, 5);
  const errors = worker.control.items.filter((m) => m.id === null).map((m) => (m.error as { code: number }).code);
  assert.deepEqual(errors, [ErrorCodes.ParseError, ErrorCodes.MessageTooLarge, ErrorCodes.ParseError]);
});
