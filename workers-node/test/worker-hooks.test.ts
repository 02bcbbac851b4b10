/**
 * The lifecycle hooks in order, through to `shuttingDown(reason)` and `stopped`, and the
 * ShutdownReason each way of ending a worker gives (the same strings in every SDK), against the
 * real hooks fixture process.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcessByStdio } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { test, type TestContext } from "node:test";

import type { ShutdownReason } from "@aspect-ipc/worker";

import { WorkerProcess, fixture, tempDirectory } from "./helpers/parent.js";

function startHooksWorker(t: TestContext, env: Record<string, string> = {}): WorkerProcess {
  const directory = tempDirectory();
  const worker = new WorkerProcess(fixture("hooks"), { dataPath: join(directory.path, "d.sock"), env });
  t.after(() => {
    worker.kill();
    directory.remove();
  });
  return worker;
}

/** The hook lines up to `ready`, for a worker with a data channel and one connection. */
function startUpLines(dataPath: string): string[] {
  return ["controlReady", `dataListening ${dataPath}`, "dataConnected", "dataReady", "ready"];
}

function hookLines(stderr: string): string[] {
  return stderr
    .split("\n")
    .filter((line) => line.startsWith("hook: "))
    .map((line) => line.slice("hook: ".length));
}

/** Each way a connected worker is ended, and the reason its `shuttingDown` hook must get. */
const CAUSES: Array<[string, ShutdownReason, (worker: WorkerProcess) => Promise<void> | void]> = [
  ["$/shutdown request", "shutdown_request", async (worker) => void (await worker.request("$/shutdown", { timeout: 1 }))],
  ["$/shutdown notification", "shutdown_request", (worker) => worker.send({ jsonrpc: "2.0", method: "$/shutdown" })],
  ["worker.shutdown()", "shutdown_call", async (worker) => void (await worker.request("shutdownCall"))],
  ["stdin EOF", "stdin_eof", (worker) => worker.closeStdin()],
  [
    "stdout closed",
    "stdout_closed",
    (worker) => {
      worker.child.stdout.destroy();
      // The answer to this request cannot be written: nobody reads the worker's stdout any more.
      worker.send({ jsonrpc: "2.0", id: 99, method: "add", params: { a: 1, b: 2 } });
    },
  ],
  ["SIGTERM", "signal", (worker) => void worker.child.kill("SIGTERM")],
  ["SIGINT", "signal", (worker) => void worker.child.kill("SIGINT")],
];

test("hooks run once each, in order, ending with shuttingDown(reason) and stopped; the reason names the cause", async (t) => {
  for (const [cause, reason, end] of CAUSES) {
    await t.test(cause, async (t2) => {
      const worker = startHooksWorker(t2);
      await worker.ready();
      await worker.openData();
      await worker.waitStderr("hook: ready\n");
      await end(worker);
      assert.deepEqual(await worker.exited, { code: 0, signal: null });
      assert.deepEqual(hookLines(worker.stderr), [...startUpLines(worker.dataPath as string), `shuttingDown ${reason}`, "stopped"]);
    });
  }
});

test("a hook that throws is logged and the worker goes on: it serves, and every later hook still runs", async (t) => {
  const worker = startHooksWorker(t, { HOOKS_THROW: "1" });
  await worker.ready();
  const parent = await worker.openData();
  assert.deepEqual((await parent.request("add", { a: 2, b: 3 })).result, 5);
  assert.deepEqual((await worker.request("add", { a: 1, b: 1 })).result, 2);
  assert.deepEqual((await worker.request("$/shutdown")).result, null);
  assert.deepEqual(await worker.exited, { code: 0, signal: null });
  const names = ["controlReady", "dataListening", "dataConnected", "dataReady", "ready", "shuttingDown", "stopped"];
  assert.deepEqual(
    hookLines(worker.stderr).map((line) => line.split(" ")[0]),
    names,
  );
  for (const name of names) assert.ok(worker.stderr.includes(`aspect-ipc: ${name} hook failed: boom in ${name}\n`), `${name} failure logged`);
});

/** Whether a process is gone (or a zombie waiting to be reaped, which is as dead). */
function isGone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "latin1").split(") ")[1]?.startsWith("Z") ?? true;
  } catch {
    return true;
  }
}

test("the parent's death while stdin stays open: shuttingDown(parent_exited), then stopped", async (t) => {
  // A process stands between this test and the worker: killing it re-parents the worker, whose
  // stdin, stdout and stderr (this test's pipes, passed on) stay open.
  const env: NodeJS.ProcessEnv = { ...process.env, ASPECT_IPC_PROTOCOL: "1", ASPECT_IPC_WORKER_ID: "worker-1" };
  for (const name of Object.keys(env)) if (name.startsWith("ASPECT_IPC_DATA_PATH") || name.startsWith("ASPECT_IPC_TOKEN")) delete env[name];
  const script = 'require("node:child_process").spawn(process.execPath, [process.argv[1]], { stdio: "inherit" }); setInterval(() => {}, 60_000);';
  // Stdin is a FIFO this test holds open for writing: a child's stdin pipe would be closed by Node
  // when the middle process exits.
  const directory = tempDirectory();
  const fifo = join(directory.path, "stdin");
  execFileSync("mkfifo", [fifo]);
  const stdin = openSync(fifo, "r+");
  const middle = spawn(process.execPath, ["-e", script, fixture("hooks")], { env, stdio: [stdin, "pipe", "pipe"] }) as ChildProcessByStdio<null, Readable, Readable>;
  let stdout = "";
  let stderr = "";
  middle.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  middle.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const stderrClosed = new Promise<void>((resolve) => middle.stderr.once("close", () => resolve()));
  let workerPid: number | null = null;
  t.after(() => {
    closeSync(stdin);
    directory.remove();
    if (middle.exitCode === null && middle.signalCode === null) middle.kill("SIGKILL");
    if (workerPid !== null && !isGone(workerPid)) process.kill(workerPid, "SIGKILL");
  });

  const deadline = Date.now() + 10_000;
  while (!stderr.includes("hook: ready\n")) {
    assert.ok(Date.now() < deadline, `the worker did not start: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const ready = JSON.parse(stdout.split("\n")[0] as string) as { method: string; params: { pid: number } };
  assert.equal(ready.method, "$/ready");
  workerPid = ready.params.pid;
  middle.kill("SIGKILL");
  // The worker ends: its stderr (the last holder of the pipe) closes.
  await stderrClosed;
  assert.deepEqual(hookLines(stderr), ["controlReady", "ready", "shuttingDown parent_exited", "stopped"]);
  const gone = Date.now() + 2_000;
  while (!isGone(workerPid) && Date.now() < gone) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(isGone(workerPid), "the worker exited");
});
