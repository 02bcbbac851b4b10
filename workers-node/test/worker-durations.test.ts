/**
 * The Worker's millisecond options (README: "new Worker(options?)", `worker.shutdown(timeoutMs?)`)
 * against a real worker process (test/fixtures/duration-options.ts): each is checked where it is
 * given, and Infinity or a value past setTimeout's 2^31-1 ms means what it says (no limit, or a
 * very long wait), silently, instead of a 1 ms timer with a TimeoutOverflowWarning.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { test, type TestContext } from "node:test";

import { WorkerProcess, fixture, tempDirectory } from "./helpers/parent.js";

const RULE = "must be a number of milliseconds >= 0 (Infinity for no limit), not";

/** Values a program might pass by mistake: as the fixture reads them, the error class, and how the message shows them. */
const REFUSED: ReadonlyArray<readonly [string, string, string]> = [
  ['"5"', "TypeError", '"5"'],
  ["null", "TypeError", "null"],
  ["true", "TypeError", "true"],
  ["-1", "RangeError", "-1"],
  ["NaN", "RangeError", "NaN"],
];

function startWorker(t: TestContext, env: Record<string, string>, withData = true): WorkerProcess {
  const directory = tempDirectory();
  const worker = new WorkerProcess(fixture("duration-options"), { dataPath: withData ? join(directory.path, "d.sock") : null, env });
  t.after(() => {
    worker.kill();
    directory.remove();
  });
  return worker;
}

test("new Worker() refuses a helloTimeoutMs or shutdownTimeoutMs that is not a number >= 0, naming it, before anything starts", async (t) => {
  for (const [variable, option] of [
    ["TEST_HELLO_TIMEOUT_MS", "helloTimeoutMs"],
    ["TEST_SHUTDOWN_TIMEOUT_MS", "shutdownTimeoutMs"],
  ] as const) {
    for (const [value, kind, shown] of REFUSED) {
      const worker = startWorker(t, { [variable]: value });
      // A worker that accepted the value would serve until stdin ends, then exit 0.
      worker.closeStdin();
      assert.deepEqual(await worker.exited, { code: 3, signal: null }, `${option}=${value}: ${worker.stderr}`);
      assert.equal(worker.stderr, `${kind}: ${option} ${RULE} ${shown}\n`);
      assert.deepEqual(worker.control.items, [], "nothing on the control channel");
    }
  }
});

test("helloTimeoutMs: Infinity or 2^31 ms: a silent connection stays open, then authenticates; nothing on stderr", async (t) => {
  for (const value of ["Infinity", String(2 ** 31)]) {
    const worker = startWorker(t, { TEST_HELLO_TIMEOUT_MS: value });
    await worker.ready();
    const connection = await worker.connectData();
    await sleep(50); // a hello timer clamped to 1 ms would have closed it by now
    const hello = await connection.request("$/hello", { token: worker.token, protocol: 1 });
    assert.ok("result" in hello, `helloTimeoutMs=${value}: ${JSON.stringify(hello)}`);
    worker.closeStdin();
    assert.deepEqual(await worker.exited, { code: 0, signal: null });
    assert.equal(worker.stderr, "", `helloTimeoutMs=${value}`);
  }
});

test("shutdown() with shutdownTimeoutMs Infinity, or shutdown(3e9): the running handler finishes, silently, then the worker exits", async (t) => {
  for (const [env, params] of [
    [{ TEST_SHUTDOWN_TIMEOUT_MS: "Infinity" }, {}],
    [{}, { timeoutMs: "Infinity" }],
    [{}, { timeoutMs: "3e9" }],
  ] as const) {
    const worker = startWorker(t, env);
    await worker.ready();
    worker.send({ jsonrpc: "2.0", id: "s", method: "sleep", params: { seconds: 0.3 } });
    assert.equal((await worker.request("shutdownWith", params)).result, "shutting down");
    const answer = await worker.waitControl((m) => m.id === "s", "the sleep's answer");
    assert.equal(answer.result, "done", `${JSON.stringify(env)} ${JSON.stringify(params)}: ${JSON.stringify(answer)}`);
    assert.deepEqual(await worker.exited, { code: 0, signal: null });
    assert.equal(worker.stderr, "", `${JSON.stringify(env)} ${JSON.stringify(params)}`);
  }
});

test("worker.shutdown(timeoutMs) with a value that is not a number >= 0 throws at once, and nothing shuts down", async (t) => {
  const worker = startWorker(t, {});
  await worker.ready();
  for (const [value, kind, shown] of REFUSED) {
    const answer = await worker.request("shutdownWith", { timeoutMs: value });
    assert.equal(answer.result, `${kind}: shutdown timeoutMs ${RULE} ${shown}`);
  }
  // Still serving: a shutdown would refuse this with -32004.
  const after = await worker.request("sleep", { seconds: 0 });
  assert.equal(after.result, "done", JSON.stringify(after));
});

test("worker.data.request() without a data connection refuses a bad timeoutMs for what it is, before saying there is no connection", async (t) => {
  for (const withData of [true, false]) {
    const worker = startWorker(t, {}, withData);
    await worker.ready();
    for (const [value, kind, shown] of REFUSED) {
      const answer = await worker.request("dataRequest", { timeoutMs: value });
      assert.equal(answer.result, `${kind}: timeoutMs ${RULE} ${shown}`, `data path: ${withData}`);
    }
    const unconnected = await worker.request("dataRequest", { timeoutMs: "100" });
    assert.match(String(unconnected.result), /^ChannelClosed: /);
  }
});
