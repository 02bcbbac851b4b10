/**
 * The dual-channel example worker (examples/dual-channel/worker.ts) and the README's worker, driven
 * as their parent would.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { EXAMPLE_WORKER, WorkerProcess, fixture, tempDirectory } from "./helpers/parent.js";

test("the dual-channel example: start-up lines, control and data methods, shutdown", async (t) => {
  const directory = tempDirectory();
  const dataPath = join(directory.path, "dual-channel-example-worker-1.sock");
  const worker = new WorkerProcess(EXAMPLE_WORKER, { dataPath });
  t.after(() => {
    worker.kill();
    directory.remove();
  });

  await worker.ready();
  const parent = await worker.openData();
  await worker.waitStderr("Worker: All channels ready\n");
  assert.equal(
    worker.stderr,
    [
      "Worker: Starting...",
      "Worker: Setting up control channel (stdio)...",
      "Worker: Control channel ready",
      `Worker: Setting up data channel at ${dataPath}...`,
      "Worker: Data channel listening",
      "Worker: Data channel client connected",
      "Worker: Data channel ready",
      "Worker: All channels ready",
      "",
    ].join("\n"),
    "the start-up lines, in order (that they precede the $/hello response is tested with test/fixtures/hooks.ts)",
  );

  const status = (await worker.request("getStatus")).result as { status: string; uptime: number };
  assert.equal(status.status, "running");
  assert.ok(Number.isInteger(status.uptime) && status.uptime >= 0);
  assert.deepEqual((await worker.request("getConfig")).result, { version: "1.0.0", features: ["dual-channel", "msgpack", "hot-reload"] });

  const items = Array.from({ length: 1000 }, (_, id) => ({ id, value: Math.random() * 100 }));
  let sum = 0;
  for (const item of items) sum += item.value;
  assert.deepEqual((await parent.request("processItems", { items })).result, { processed: 1000, sum });
  await worker.waitStderr("Worker: Processing 1000 items...\n");

  const matrix = Array.from({ length: 100 }, () => Array.from({ length: 100 }, () => Math.random()));
  let matrixSum = 0;
  for (const row of matrix) for (const value of row) matrixSum += value;
  assert.deepEqual((await parent.request("processMatrix", { matrix })).result, { sum: matrixSum, avg: matrixSum / 10_000 });
  await worker.waitStderr("Worker: Processing 100x100 matrix...\n");

  assert.deepEqual(await worker.request("shutdown"), { jsonrpc: "2.0", id: 3, result: null });
  assert.deepEqual(await worker.exited, { code: 0, signal: null });
  await parent.closed;
  assert.ok(worker.stderr.endsWith("Worker: Shutting down...\n"));
  assert.ok(!existsSync(dataPath), "socket file removed");
});

test("the README's 15-line worker is the fixture, and it works", async (t) => {
  const readme = readFileSync(fileURLToPath(new URL("../../README.md", import.meta.url)), "utf8");
  const source = readFileSync(fileURLToPath(new URL("../../test/fixtures/readme-worker.ts", import.meta.url)), "utf8");
  const block = readme.split("## A worker in 15 lines")[1]?.split("```ts\n")[1]?.split("```")[0];
  assert.ok(block !== undefined && source.endsWith(block), "test/fixtures/readme-worker.ts matches the README");

  const directory = tempDirectory();
  const worker = new WorkerProcess(fixture("readme-worker"), { dataPath: join(directory.path, "r.sock") });
  t.after(() => {
    worker.kill();
    directory.remove();
  });
  await worker.ready();
  const parent = await worker.openData();
  await worker.waitStderr("worker: ready\n");
  assert.deepEqual((await worker.request("getStatus")).result, { status: "running" });
  assert.equal((await parent.request("sum", { values: [1, 2, 3.5] })).result, 6.5);
  assert.deepEqual((await parent.request("sum", { values: "x" })).error, { code: -32602, message: "values must be an array" });
  parent.send({ jsonrpc: "2.0", id: 9, method: "wait", params: { ms: 60_000 } });
  parent.send({ jsonrpc: "2.0", method: "$/cancelRequest", params: { id: 9 } });
  assert.equal(((await parent.waitFor((m) => m.id === 9, "cancelled wait")).error as { code: number }).code, -32002);
  assert.equal((await worker.request("wait", { ms: 1 })).result, "done");
});
