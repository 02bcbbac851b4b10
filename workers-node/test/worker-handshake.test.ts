/**
 * The start-up handshake against the real test worker process: $/ready, listening rules, $/hello,
 * one authenticated connection at a time, oversized frames from strangers, environment errors.
 */
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { test, type TestContext } from "node:test";

import { ErrorCodes } from "@aspect-ipc/worker";

import { TEST_WORKER, WorkerProcess, fixture, tempDirectory } from "./helpers/parent.js";

/** A test worker with a data path in a fresh directory, killed and cleaned up after the test. */
function startWorker(t: TestContext, env: Record<string, string | undefined> = {}, script = TEST_WORKER): WorkerProcess {
  const directory = tempDirectory();
  const worker = new WorkerProcess(script, { dataPath: join(directory.path, "d.sock"), env });
  t.after(() => {
    worker.kill();
    directory.remove();
  });
  return worker;
}

test("$/ready announces the worker, then $/hello authenticates the data connection; socket mode 0600", async (t) => {
  const worker = startWorker(t);
  const ready = await worker.ready();
  assert.deepEqual(ready, {
    protocol: 1,
    sdk: "aspect-ipc-node",
    sdkVersion: "0.1.0",
    language: "node",
    pid: worker.child.pid,
    dataPath: worker.dataPath,
  });
  const stats = statSync(worker.dataPath as string);
  assert.ok(stats.isSocket());
  assert.equal(stats.mode & 0o777, 0o600);

  const connection = await worker.connectData();
  const hello = await connection.request("$/hello", { token: worker.token, protocol: 1 });
  assert.deepEqual(hello, { jsonrpc: "2.0", id: 1, result: { protocol: 1, workerId: "worker-1", pid: worker.child.pid } });
  assert.deepEqual((await connection.request("add", { a: 40, b: 2 })).result, 42);
  assert.equal(worker.control.items.length, 1, "nothing but $/ready on control");
});

test("messages pipelined right behind $/hello wait for the authentication and are then served in order", async (t) => {
  const worker = startWorker(t);
  await worker.ready();
  const connection = await worker.connectData();
  connection.send({ jsonrpc: "2.0", id: 1, method: "$/hello", params: { token: worker.token, protocol: 1 } });
  connection.send({ jsonrpc: "2.0", id: 2, method: "add", params: { a: 1, b: 2 } });
  connection.send({ jsonrpc: "2.0", id: 3, method: "$/ping" });
  await connection.waitFor((m) => m.id === 3, "the ping");
  assert.deepEqual(
    connection.messages.items.map((m) => [m.id, m.result]),
    [
      [1, { protocol: 1, workerId: "worker-1", pid: worker.child.pid }],
      [2, 3],
      [3, {}],
    ],
  );
});

test("a control-only worker sends $/ready with dataPath null", async (t) => {
  const worker = new WorkerProcess(TEST_WORKER);
  t.after(() => worker.kill());
  assert.equal((await worker.ready()).dataPath, null);
  assert.deepEqual((await worker.request("add", { a: 1, b: 2 })).result, 3);
});

test("a wrong token is answered -32003 and the connection closed; the right one then works", async (t) => {
  const worker = startWorker(t);
  await worker.ready();
  const wrongToken = "0".repeat(64);
  const intruder = await worker.connectData();
  const answer = await intruder.request("$/hello", { token: wrongToken, protocol: 1 });
  assert.deepEqual(answer.error, { code: ErrorCodes.Unauthorized, message: "unauthorized: wrong or missing token" });
  await intruder.closed;

  const missing = await worker.connectData();
  assert.equal(((await missing.request("$/hello", { protocol: 1 })).error as { code: number }).code, ErrorCodes.Unauthorized);
  await missing.closed;

  const parent = await worker.openData();
  assert.deepEqual((await parent.request("echo", ["ok"])).result, ["ok"]);
  assert.ok(!worker.stderr.includes(worker.token) && !worker.stderr.includes(wrongToken), "no token is ever logged");
});

test("a first frame other than $/hello is answered -32003 and the connection closed", async (t) => {
  const worker = startWorker(t);
  await worker.ready();
  const connection = await worker.connectData();
  const answer = await connection.request("echo", [1]);
  assert.deepEqual(answer, {
    jsonrpc: "2.0",
    id: 1,
    error: { code: ErrorCodes.Unauthorized, message: "unauthorized: the first message on a data connection must be a $/hello request" },
  });
  await connection.closed;

  const notifier = await worker.connectData();
  notifier.send({ jsonrpc: "2.0", method: "$/hello", params: { token: worker.token, protocol: 1 } });
  const reply = await notifier.waitFor(() => true, "an answer to a $/hello notification");
  assert.deepEqual(reply.id, null);
  assert.equal((reply.error as { code: number }).code, ErrorCodes.Unauthorized);
  await notifier.closed;
});

test("a $/hello with another protocol version is answered -32007 with the supported versions", async (t) => {
  const worker = startWorker(t);
  await worker.ready();
  const connection = await worker.connectData();
  const answer = await connection.request("$/hello", { token: worker.token, protocol: 2 });
  const error = answer.error as { code: number; data: unknown };
  assert.equal(error.code, ErrorCodes.ProtocolVersionMismatch);
  assert.deepEqual(error.data, { supported: [1] });
  await connection.closed;
});

test("one authenticated connection at a time: a second one is refused without disturbing the first", async (t) => {
  const worker = startWorker(t);
  await worker.ready();
  const first = await worker.openData();
  const second = await worker.connectData();
  const refused = await second.request("$/hello", { token: worker.token, protocol: 1 });
  assert.deepEqual(refused.error, { code: ErrorCodes.Unauthorized, message: "unauthorized: data channel already connected" });
  await second.closed;
  assert.deepEqual((await first.request("add", { a: 1, b: 1 })).result, 2);

  first.close();
  await first.closed;
  const third = await worker.openData();
  assert.deepEqual((await third.request("add", { a: 2, b: 2 })).result, 4);
});

test("an oversized frame from a stranger gets -32005 and is closed; the authenticated connection is unaffected", async (t) => {
  const worker = startWorker(t, { ASPECT_IPC_MAX_FRAME_SIZE: "4096" });
  await worker.ready();
  const parent = await worker.openData();
  const stranger = await worker.connectData();
  stranger.writeRaw(Uint8Array.of(0xff, 0xff, 0xff, 0xff));
  const answer = await stranger.waitFor(() => true, "the courtesy error");
  assert.equal(answer.id, null);
  assert.equal((answer.error as { code: number }).code, ErrorCodes.MessageTooLarge);
  await stranger.closed;

  // The limit from ASPECT_IPC_MAX_FRAME_SIZE applies to the authenticated connection too.
  const big = new Uint8Array(5000);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(big.length + 100);
  assert.deepEqual((await parent.request("echo", [new Uint8Array([1, 2, 3])])).result, [new Uint8Array([1, 2, 3])]);
  parent.writeRaw(header);
  const tooLarge = await parent.waitFor((m) => m.id === null, "-32005 on the authenticated connection");
  assert.match((tooLarge.error as { message: string }).message, /exceeds max_frame_size \(4 KiB\)/);
  await parent.closed;
  await worker.waitStderr("exceeds max_frame_size");

  const again = await worker.openData();
  assert.deepEqual((await again.request("add", { a: 3, b: 4 })).result, 7);
});

test("a connection that never says $/hello is closed after the hello timeout", async (t) => {
  const worker = startWorker(t, {}, fixture("short-hello-timeout"));
  await worker.ready();
  const silent = await worker.connectData();
  await silent.closed;
  await worker.waitStderr("no $/hello within 200 ms");
  const parent = await worker.openData();
  assert.deepEqual((await parent.request("echo", { a: 1 })).result, { a: 1 });
});

test("hooks run in order, and dataReady/ready finish before the $/hello response is written", async (t) => {
  const worker = startWorker(t, {}, fixture("hooks"));
  await worker.ready();
  await worker.waitStderr("hook: dataListening");
  assert.equal(worker.stderr, `hook: controlReady\nhook: dataListening ${worker.dataPath}\n`);
  await worker.openData();
  // The hooks left their marker files before the $/hello response was written.
  const directory = dirname(worker.dataPath as string);
  assert.ok(existsSync(join(directory, "data-ready")) && existsSync(join(directory, "ready")));
  await worker.waitStderr("hook: ready\n");
  assert.equal(
    worker.stderr,
    `hook: controlReady\nhook: dataListening ${worker.dataPath}\nhook: dataConnected\nhook: dataReady\nhook: ready\n`,
  );
  worker.closeStdin();
  assert.deepEqual(await worker.exited, { code: 0, signal: null });
  assert.match(worker.stderr, /hook: shuttingDown stdin-eof\n$/);
});

test("a data path without a token, or an invalid frame size, refuses to start with exit code 2", async (t) => {
  const noToken = startWorker(t, { ASPECT_IPC_TOKEN: "" });
  assert.deepEqual(await noToken.exited, { code: 2, signal: null });
  assert.match(noToken.stderr, /ASPECT_IPC_TOKEN is missing or empty/);
  assert.equal(noToken.control.items.length, 0, "no $/ready");

  const badSize = startWorker(t, { ASPECT_IPC_MAX_FRAME_SIZE: "64MiB" });
  assert.deepEqual(await badSize.exited, { code: 2, signal: null });
  assert.match(badSize.stderr, /ASPECT_IPC_MAX_FRAME_SIZE must be a decimal integer/);
  assert.ok(!badSize.stderr.includes(badSize.token));
});
