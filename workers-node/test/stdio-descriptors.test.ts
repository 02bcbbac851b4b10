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
import { test, type TestContext } from "node:test";

import { TEST_WORKER, tempDirectory } from "./helpers/parent.js";

interface PipedWorker {
  readonly child: ChildProcess;
  readonly lines: string[];
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
  const env: NodeJS.ProcessEnv = { ...process.env, ASPECT_IPC_PROTOCOL: "1", ASPECT_IPC_WORKER_ID: "worker-1", ASPECT_IPC_NAMESPACE: "tests" };
  for (const name of Object.keys(env)) if (name.startsWith("ASPECT_IPC_TOKEN") || name.startsWith("ASPECT_IPC_DATA") || name.startsWith("TEST_")) delete env[name];
  const child = spawn(process.execPath, [TEST_WORKER], { env, stdio: [inFd, outFd, errFd] });
  const stdout = new Socket({ fd: outFd, readable: true, writable: false });
  const stderr = new Socket({ fd: errFd, readable: true, writable: false });
  t.after(() => {
    child.kill("SIGKILL");
    stdout.destroy();
    stderr.destroy();
    closeSync(inFd);
    directory.remove();
  });
  const lines: string[] = [];
  let pending = "";
  let errText = "";
  let wake = (): void => undefined;
  stdout.on("data", (chunk: Buffer) => {
    const parts = (pending + chunk.toString("utf8")).split("\n");
    pending = parts.pop() ?? "";
    lines.push(...parts);
    wake();
  });
  stderr.on("data", (chunk: Buffer) => {
    errText += chunk.toString("utf8");
    wake();
  });
  const until = async (what: string, holds: () => boolean): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!holds()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stdout lines: ${JSON.stringify(lines)}`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  };
  await until("$/ready", () => lines.some((line) => line.includes('"$/ready"')));
  let nextId = 1;
  return {
    child,
    lines,
    paths: { input, out, err },
    stderr: () => errText,
    async request(method, params) {
      const id = nextId++;
      writeSync(inFd, `${JSON.stringify({ jsonrpc: "2.0", id, method, params })}\n`);
      let answer: Record<string, unknown> | undefined;
      await until(`the answer to ${method}`, () => {
        for (const line of lines) {
          try {
            const message = JSON.parse(line) as Record<string, unknown>;
            if (message.id === id) answer = message;
          } catch {
            // not JSON: checked by the test
          }
        }
        return answer !== undefined;
      });
      return answer as Record<string, unknown>;
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
  for (const line of worker.lines) assert.doesNotThrow(() => JSON.parse(line), `a stdout line that is not JSON: ${line}`);
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

// A child that reads its stdin as interactive tools do: waits until it is readable, reads, for
// the seconds it is given; prints how many bytes it read. It stops at end of file.
const STDIN_READER = `
import os, select, sys, time
end, taken = time.monotonic() + float(sys.argv[1]), 0
while (left := end - time.monotonic()) > 0:
    if select.select([0], [], [], left)[0]:
        try:
            data = os.read(0, 65536)
        except BlockingIOError:
            continue
        if not data:
            break
        taken += len(data)
print(taken)
`;

test("a child that inherits stdin reads end of file, not the parent's messages", async (t) => {
  const worker = await pipedWorker(t);
  const workerPid = worker.child.pid as number;
  assert.equal(readlinkSync(`/proc/${workerPid}/fd/0`), "/dev/null", "descriptor 0 reads /dev/null");
  // The child runs while the requests below are sent: each would be its to take.
  const child = worker.request("childStdin", { argv: ["python3", "-c", STDIN_READER, "1.5"] });
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (let n = 0; n < 5; n++) assert.equal((await worker.request("add", { a: n, b: 1 })).result, n + 1);
  assert.equal(String((await child).result).trim(), "0");
});
