/**
 * The worker moves the protocol off file descriptors 0 and 1 and points them at /dev/null and
 * stderr (PROTOCOL.md 1.5), on Linux when they are pipes, as under the Python parent.
 *
 * Node's own `spawn` gives a child socket pairs, not pipes, so these tests hand the worker FIFOs
 * (named pipes, which are pipes) for stdin, stdout and stderr, and use them as the parent would.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, constants, openSync, readdirSync, readlinkSync, writeSync } from "node:fs";
import { Socket } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test, type TestContext } from "node:test";

import { Inbox, TEST_WORKER, tempDirectory, workerEnv } from "./helpers/parent.js";

/** A child that reads the stdin it inherits as interactive tools do; prints the bytes it read. */
const STDIN_READER = fileURLToPath(new URL("../../../integration-tests/workers/stdin_reader.py", import.meta.url));

interface PipedWorker {
  readonly child: ChildProcess;
  /** Every stdout line so far. */
  lines(): string[];
  /** The FIFOs of the worker's stdout and stderr, as /proc shows them. */
  readonly paths: { readonly input: string; readonly out: string; readonly err: string };
  stderr(): string;
  request(method: string, params: unknown): Promise<Record<string, unknown>>;
}

async function pipedWorker(t: TestContext): Promise<PipedWorker> {
  const directory = tempDirectory();
  const [input, out, err] = ["in", "out", "err"].map((name) => join(directory.path, name)) as [string, string, string];
  execFileSync("mkfifo", [input, out, err]);
  // Read and write: opening a FIFO so does not wait for the other end.
  const [inFd, outFd, errFd] = [input, out, err].map((path) => openSync(path, constants.O_RDWR)) as [number, number, number];
  const child = spawn(process.execPath, [TEST_WORKER], { env: workerEnv(), stdio: [inFd, outFd, errFd] });
  const stdout = new Socket({ fd: outFd, readable: true, writable: false });
  const stderr = new Socket({ fd: errFd, readable: true, writable: false });
  t.after(() => {
    child.kill("SIGKILL");
    stdout.destroy();
    stderr.destroy();
    closeSync(inFd);
    directory.remove();
  });
  // Every stdout line, parsed once as it arrives (null when it is not JSON: checked by the tests).
  const control = new Inbox<{ readonly line: string; readonly message: Record<string, unknown> | null }>();
  let pending = "";
  let errText = "";
  stdout.on("data", (chunk: Buffer) => {
    const parts = (pending + chunk.toString("utf8")).split("\n");
    pending = parts.pop() ?? "";
    for (const line of parts) {
      let message: Record<string, unknown> | null = null;
      try {
        message = JSON.parse(line) as Record<string, unknown>;
      } catch {
        // not JSON
      }
      control.push({ line, message });
    }
  });
  stderr.on("data", (chunk: Buffer) => (errText += chunk.toString("utf8")));
  await control.waitFor((item) => item.message?.method === "$/ready", "$/ready");
  let nextId = 1;
  return {
    child,
    lines: () => control.items.map((item) => item.line),
    paths: { input, out, err },
    stderr: () => errText,
    async request(method, params) {
      const id = nextId++;
      writeSync(inFd, `${JSON.stringify({ jsonrpc: "2.0", id, method, params })}\n`);
      const answer = await control.waitFor((item) => item.message?.id === id, `the answer to ${method}`);
      return answer.message as Record<string, unknown>;
    },
  };
}

test("a child that inherits stdout writes to stderr: its text without a newline costs no answer", async (t) => {
  const worker = await pipedWorker(t);
  const text = `child output ${process.pid} without a newline`;
  // Before the SDK moved the protocol off descriptor 1, this answer arrived glued to the text,
  // on one line that is not JSON, and the request was never answered.
  assert.equal((await worker.request("childPrint", { text })).result, null);
  assert.equal((await worker.request("add", { a: 1, b: 2 })).result, 3);
  assert.equal((await worker.request("print", { text: "and console.log" })).result, null);
  const deadline = Date.now() + 10_000;
  while (!worker.stderr().includes(`${text}and console.log\n`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(worker.stderr().includes(`${text}and console.log\n`), worker.stderr());
  for (const line of worker.lines()) assert.doesNotThrow(() => JSON.parse(line), `a stdout line that is not JSON: ${line}`);
});

test("the protocol's own descriptor is not inherited: a child holds no descriptor on the stdout pipe", async (t) => {
  const worker = await pipedWorker(t);
  const answer = await worker.request("spawnChild", { seconds: 30 });
  const pid = (answer.result as { pid: number }).pid;
  t.after(() => {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  });
  const links = (of: number): string[] => readdirSync(`/proc/${of}/fd`).map((fd) => {
    try {
      return readlinkSync(`/proc/${of}/fd/${fd}`);
    } catch {
      return "";
    }
  });
  const workerPid = worker.child.pid as number;
  assert.equal(readlinkSync(`/proc/${workerPid}/fd/1`), worker.paths.err, "descriptor 1 points at stderr's pipe");
  assert.ok(links(workerPid).includes(worker.paths.out), "the worker keeps the stdout pipe on a descriptor of its own");
  assert.ok(!links(pid).includes(worker.paths.out), `the child holds the protocol's pipe: ${JSON.stringify(links(pid))}`);
});

test("a child that inherits stdin reads end of file, not the parent's messages", async (t) => {
  const worker = await pipedWorker(t);
  const workerPid = worker.child.pid as number;
  assert.equal(readlinkSync(`/proc/${workerPid}/fd/0`), "/dev/null", "descriptor 0 reads /dev/null");
  // The child runs while the requests below are sent: each would be its to take.
  const child = worker.request("childStdin", { argv: ["python3", STDIN_READER, "1.5"] });
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (let n = 0; n < 5; n++) assert.equal((await worker.request("add", { a: n, b: 1 })).result, n + 1);
  assert.equal(String((await child).result).trim(), "0");
});
