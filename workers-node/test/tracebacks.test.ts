/**
 * Remote tracebacks (PROTOCOL.md 4.10, 5.3), against the real test worker process: a handler's
 * plain failure is answered with its stack in `data.traceback` unless the parent said
 * `ASPECT_IPC_TRACEBACKS=0`; the worker writes the failure to its stderr either way; a bad value of
 * the variable stops the worker with exit code 2; a typed error is sent unchanged.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test, type TestContext } from "node:test";

import { TEST_WORKER, WorkerProcess, tempDirectory } from "./helpers/parent.js";
import { loadVectors } from "./helpers/vectors.js";

function startWorker(t: TestContext, env: Record<string, string | undefined> = {}): WorkerProcess {
  const directory = tempDirectory();
  const worker = new WorkerProcess(TEST_WORKER, { dataPath: join(directory.path, "d.sock"), env });
  t.after(() => {
    worker.kill();
    directory.remove();
  });
  return worker;
}

interface HandlerErrorData {
  type: string;
  traceback?: string;
}

test("a plain failure carries its type and its stack on both channels, and is written to stderr", async (t) => {
  const worker = startWorker(t);
  await worker.ready();
  const parent = await worker.openData();
  for (const answer of [await worker.request("fail", { message: "boom" }), await parent.request("fail", { message: "boom" })]) {
    const error = answer.error as { code: number; data: HandlerErrorData };
    assert.equal(error.code, -32000);
    assert.equal(error.data.type, "Error");
    assert.match(error.data.traceback ?? "", /^Error: boom\n {4}at .*worker\.js/);
  }
  await worker.waitStderr("'fail' on the control channel failed:\nError: boom\n    at ");
  await worker.waitStderr("'fail' on the data channel failed:\nError: boom\n    at ");
});

test("ASPECT_IPC_TRACEBACKS=0: the type crosses, the stack stays in the worker's stderr", async (t) => {
  const worker = startWorker(t, { ASPECT_IPC_TRACEBACKS: "0" });
  await worker.ready();
  const error = (await worker.request("fail", { message: "secret path" })).error as { data: HandlerErrorData };
  assert.deepEqual(error.data, { type: "Error" });
  await worker.waitStderr("Error: secret path\n    at ");
});

test("a typed error is sent unchanged, no type or traceback added, and not written to stderr", async (t) => {
  const worker = startWorker(t);
  await worker.ready();
  const answer = await worker.request("fail", { message: "typed", code: 4001, data: { why: 1 } });
  assert.deepEqual(answer.error, { code: 4001, message: "typed", data: { why: 1 } });
  await worker.request("fail", { message: "plain" });
  await worker.waitStderr("Error: plain"); // stderr is in order: the typed error would be above
  assert.ok(!worker.stderr.includes("typed"), worker.stderr);
});

interface TracebacksCase {
  id: string;
  value: string | null;
  expect: { send_traceback?: boolean; error?: boolean };
}

// spec/vectors/environment.json, tracebacks_cases: each value against a real worker process.
for (const vector of loadVectors<{ tracebacks_cases: TracebacksCase[] }>("environment.json").tracebacks_cases) {
  test(`vector ${vector.id}: ASPECT_IPC_TRACEBACKS=${JSON.stringify(vector.value)}`, async (t) => {
    const worker = startWorker(t, { ASPECT_IPC_TRACEBACKS: vector.value ?? undefined });
    if (vector.expect.error === true) {
      assert.deepEqual(await worker.exited, { code: 2, signal: null });
      assert.ok(worker.stderr.includes(`invalid ASPECT_IPC_TRACEBACKS ${JSON.stringify(vector.value)}: expected "0"`), worker.stderr);
      return;
    }
    await worker.ready();
    const error = (await worker.request("fail", { message: "boom" })).error as { data: HandlerErrorData };
    assert.equal("traceback" in error.data, vector.expect.send_traceback);
  });
}
