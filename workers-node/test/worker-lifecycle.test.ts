/**
 * Shutdown and the socket file, against the real test worker process: $/shutdown, stdin EOF,
 * signals, crashes, and what the worker does with whatever already exists at its data path.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, lstatSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { test, type TestContext } from "node:test";

import { ErrorCodes } from "@aspect-ipc/worker";

import { TEST_WORKER, WorkerProcess, tempDirectory } from "./helpers/parent.js";

function startWorker(t: TestContext, env: Record<string, string | undefined> = {}): { worker: WorkerProcess; directory: string } {
  const directory = tempDirectory();
  const worker = new WorkerProcess(TEST_WORKER, { dataPath: join(directory.path, "d.sock"), env });
  t.after(() => {
    worker.kill();
    directory.remove();
  });
  return { worker, directory: directory.path };
}

test("stdin EOF: the worker exits 0 and removes its socket file", async (t) => {
  const { worker } = startWorker(t);
  await worker.ready();
  const parent = await worker.openData();
  assert.ok(existsSync(worker.dataPath as string));
  worker.closeStdin();
  assert.deepEqual(await worker.exited, { code: 0, signal: null });
  await parent.closed;
  assert.ok(!existsSync(worker.dataPath as string), "socket file removed");
});

test("stdin EOF cancels running handlers on the data channel", async (t) => {
  const { worker } = startWorker(t);
  await worker.ready();
  const parent = await worker.openData();
  parent.send({ jsonrpc: "2.0", id: 7, method: "sleep", params: { seconds: 60, tag: "eof" } });
  await parent.request("$/ping"); // answered after the sleep above started: same channel, in order
  worker.closeStdin();
  const answer = await parent.waitFor((m) => m.id === 7, "the cancelled sleep");
  assert.equal((answer.error as { code: number }).code, ErrorCodes.RequestCancelled);
  assert.deepEqual(await worker.exited, { code: 0, signal: null });
});

test("a parent that stops reading stdout (EPIPE) ends the worker: exit 0, socket file removed", async (t) => {
  const { worker } = startWorker(t);
  await worker.ready();
  worker.child.stdout.destroy();
  // The answer to this request cannot be written: the worker's stdout has no reader any more.
  worker.send({ jsonrpc: "2.0", id: 1, method: "add", params: { a: 1, b: 2 } });
  assert.deepEqual(await worker.exited, { code: 0, signal: null });
  assert.ok(!existsSync(worker.dataPath as string));
});

test("$/shutdown: answered null, data connection closed, socket file removed, exit 0", async (t) => {
  const { worker } = startWorker(t);
  await worker.ready();
  const parent = await worker.openData();
  const answer = await worker.request("$/shutdown");
  assert.deepEqual(answer, { jsonrpc: "2.0", id: 1, result: null });
  await parent.closed;
  assert.deepEqual(await worker.exited, { code: 0, signal: null });
  assert.ok(!existsSync(worker.dataPath as string));
});

test("$/shutdown lets in-flight handlers finish and refuses new requests with -32004", async (t) => {
  const { worker } = startWorker(t);
  await worker.ready();
  const parent = await worker.openData();
  parent.send({ jsonrpc: "2.0", id: 10, method: "sleep", params: { seconds: 0.3, tag: "finishes" } });
  await parent.request("$/ping"); // answered after the sleep above started: same channel, in order
  worker.send({ jsonrpc: "2.0", id: 100, method: "$/shutdown", params: { timeout: 5 } });
  // Control first: it is ordered after $/shutdown on the same channel; once it is refused, the
  // shutdown has begun for the data channel too.
  const refusedControl = await worker.request("add", { a: 1, b: 2 });
  const refusedData = await parent.request("add", { a: 1, b: 2 });
  assert.deepEqual(refusedData.error, { code: ErrorCodes.ShuttingDown, message: "shutting down" });
  assert.deepEqual(refusedControl.error, { code: ErrorCodes.ShuttingDown, message: "shutting down" });
  assert.deepEqual((await parent.waitFor((m) => m.id === 10, "the sleep")).result, "done");
  assert.deepEqual((await worker.waitControl((m) => m.id === 100, "$/shutdown response")).result, null);
  assert.deepEqual(await worker.exited, { code: 0, signal: null });
});

test("$/shutdown cancels handlers still running after its timeout: they see it and answer -32002", async (t) => {
  const { worker } = startWorker(t);
  await worker.ready();
  const parent = await worker.openData();
  parent.send({ jsonrpc: "2.0", id: 5, method: "sleep", params: { seconds: 60, tag: "slow" } });
  await parent.request("$/ping"); // answered after the sleep above started: same channel, in order
  const shutdown = worker.request("$/shutdown", { timeout: 0.1 });
  const cancelled = await parent.waitFor((m) => m.id === 5, "the cancelled sleep");
  assert.equal((cancelled.error as { code: number }).code, ErrorCodes.RequestCancelled);
  await worker.waitControl((m) => m.method === "cancelObserved", "cancelObserved");
  const observed = worker.control.items.find((m) => m.method === "cancelObserved");
  assert.deepEqual(observed?.params, { tag: "slow" });
  assert.deepEqual((await shutdown).result, null);
  assert.deepEqual(await worker.exited, { code: 0, signal: null });
});

test("$/shutdown with an invalid timeout is answered -32602 and the worker keeps running", async (t) => {
  const { worker } = startWorker(t);
  await worker.ready();
  const answer = await worker.request("$/shutdown", { timeout: "soon" });
  assert.equal((answer.error as { code: number }).code, ErrorCodes.InvalidParams);
  assert.deepEqual((await worker.request("add", { a: 1, b: 1 })).result, 2);
});

test("SIGTERM: the data connection is closed, the socket file removed, exit 0", async (t) => {
  const { worker } = startWorker(t);
  await worker.ready();
  const parent = await worker.openData();
  worker.child.kill("SIGTERM");
  await parent.closed;
  assert.deepEqual(await worker.exited, { code: 0, signal: null });
  assert.ok(!existsSync(worker.dataPath as string));
});

test("SIGINT: same as SIGTERM", async (t) => {
  const { worker } = startWorker(t);
  await worker.ready();
  worker.child.kill("SIGINT");
  assert.deepEqual(await worker.exited, { code: 0, signal: null });
  assert.ok(!existsSync(worker.dataPath as string));
});

test("a program that handles SIGTERM itself keeps running after it; stdin EOF still ends it", async (t) => {
  const { worker } = startWorker(t, { TEST_IGNORE_SIGTERM: "1" });
  await worker.ready();
  worker.child.kill("SIGTERM");
  assert.deepEqual((await worker.request("add", { a: 2, b: 2 })).result, 4);
  assert.ok(existsSync(worker.dataPath as string));
  worker.closeStdin();
  assert.deepEqual(await worker.exited, { code: 0, signal: null });
  assert.ok(!existsSync(worker.dataPath as string));
});

test("crash exits at once with its code and no clean-up: the socket file stays (stale)", async (t) => {
  const { worker } = startWorker(t);
  await worker.ready();
  worker.send({ jsonrpc: "2.0", id: 1, method: "crash", params: { code: 3 } });
  assert.deepEqual(await worker.exited, { code: 3, signal: null });
  assert.ok(lstatSync(worker.dataPath as string).isSocket());

  // The next worker on the same path finds it stale, removes it and listens.
  const next = new WorkerProcess(TEST_WORKER, { dataPath: worker.dataPath });
  t.after(() => next.kill());
  await next.ready();
  const parent = await next.openData();
  assert.deepEqual((await parent.request("add", { a: 5, b: 5 })).result, 10);
});

test("a stale socket left by a killed process is removed and replaced", async (t) => {
  const directory = tempDirectory();
  t.after(() => directory.remove());
  const path = join(directory.path, "d.sock");
  // A process that listens and is SIGKILLed cannot remove its socket file.
  const holder = spawn(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(path)}, () => process.stdout.write("up"))`]);
  await new Promise((resolve) => holder.stdout.once("data", resolve));
  holder.kill("SIGKILL");
  await new Promise((resolve) => holder.once("exit", resolve));
  assert.ok(lstatSync(path).isSocket());

  const worker = new WorkerProcess(TEST_WORKER, { dataPath: path });
  t.after(() => worker.kill());
  await worker.ready();
  await worker.openData();
});

test("a regular file, a directory or a symlink at the data path is never removed: exit code 2", async (t) => {
  const directory = tempDirectory();
  t.after(() => directory.remove());
  const file = join(directory.path, "file.sock");
  writeFileSync(file, "precious");
  const link = join(directory.path, "link.sock");
  symlinkSync(file, link);

  for (const path of [file, link, directory.path]) {
    const worker = new WorkerProcess(TEST_WORKER, { dataPath: path });
    t.after(() => worker.kill());
    assert.deepEqual(await worker.exited, { code: 2, signal: null });
    assert.ok(worker.stderr.includes(`path exists and is not a socket: ${path}`), worker.stderr);
  }
  assert.equal(readFileSync(file, "utf8"), "precious");
  assert.ok(lstatSync(link).isSymbolicLink());
});

test("a live socket at the data path is refused and left alone: exit code 2", async (t) => {
  const directory = tempDirectory();
  const path = join(directory.path, "live.sock");
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.after(async () => {
    await new Promise((resolve) => server.close(resolve));
    directory.remove();
  });
  const worker = new WorkerProcess(TEST_WORKER, { dataPath: path });
  t.after(() => worker.kill());
  assert.deepEqual(await worker.exited, { code: 2, signal: null });
  assert.match(worker.stderr, /address in use by a live worker: /);
  assert.ok(lstatSync(path).isSocket(), "the live socket is still there");
});
