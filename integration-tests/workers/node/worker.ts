/**
 * The Node.js test worker of the integration suite (integration-tests/WORKERS.md), built only from
 * the public API of @aspect-ipc/worker.
 */
import { execFile } from "node:child_process";
import { writeSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

import { ErrorCodes, RemoteError, Worker, type RequestContext, type WorkerEndpoint } from "@aspect-ipc/worker";

// ---- environment switches, read before the SDK starts -------------------------------------------

if (process.env.TEST_IGNORE_SIGTERM === "1") {
  // A handler of the program's own: the SDK leaves SIGTERM alone from then on.
  process.on("SIGTERM", () => undefined);
}
const junk = process.env.TEST_JUNK_STDOUT;
if (junk !== undefined) writeSync(1, `${junk}\n`);

const exitBeforeReady = process.env.TEST_EXIT_BEFORE_READY;
if (exitBeforeReady !== undefined) {
  process.stderr.write("exiting early\n");
  process.exit(Number(exitBeforeReady));
}

if (process.env.TEST_NO_READY === "1") {
  process.stderr.write("not starting\n");
  process.stdin.on("data", () => undefined);
  process.stdin.on("end", () => process.exit(0));
} else {
  await main();
}

// ---- the worker ------------------------------------------------------------------------------

async function main(): Promise<void> {
  const worker = new Worker();
  const via = (name: unknown): WorkerEndpoint => (name === "data" ? worker.data : worker.control);

  worker.onRequest("echo", (params: unknown) => params ?? null);

  worker.onRequest("add", ({ a, b }: { a: number; b: number }) => a + b);

  worker.onRequest("sleep", async ({ seconds, tag }: { seconds: number; tag: string }, { signal }: RequestContext) => {
    try {
      await sleep(seconds * 1000, undefined, { signal });
    } catch (error) {
      if (signal.aborted) {
        await worker.control.notify("cancelObserved", { tag }).catch(() => undefined);
      }
      throw error;
    }
    return "done";
  });

  worker.onRequest("fail", ({ message, code, data }: { message: string; code?: number; data?: unknown }) => {
    if (code === undefined) throw new Error(message);
    throw new RemoteError(code, message, data);
  });

  worker.onRequest("crash", ({ code }: { code: number }) => {
    // At once, no clean-up: the 'exit' handlers (the SDK's socket removal) do not run.
    process.removeAllListeners("exit");
    process.exit(code);
  });

  worker.onRequest("callParent", ({ method, params, via: channel }: { method: string; params?: unknown; via: string }) =>
    via(channel).request(method, params ?? undefined),
  );

  worker.onRequest("notifyParent", async ({ method, params, via: channel }: { method: string; params?: unknown; via: string }) => {
    await via(channel).notify(method, params ?? undefined);
    return null;
  });

  worker.onRequest("print", ({ text }: { text: string }) => {
    console.log(text);
    return null;
  });

  worker.onRequest("stderr", ({ text }: { text: string }) => {
    process.stderr.write(`${text}\n`);
    return null;
  });

  worker.onRequest("getEnv", ({ name }: { name: string }) => process.env[name] ?? null);

  worker.onRequest("childEnv", ({ name }: { name: string }) => childEnv(name));

  worker.onRequest("freeze", () => {
    // Blocks the only thread: nothing is read or answered any more, $/shutdown included.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    return null;
  });

  worker.onRequest("info", () => ({ language: "node", pid: process.pid }));

  worker.onRequest("processItems", ({ items }: { items: { value: number }[] }) => {
    let sum = 0;
    for (const item of items) sum += item.value; // in order, float64: the same bits in every language
    return { processed: items.length, sum };
  });

  worker.onRequest("processMatrix", ({ matrix }: { matrix: number[][] }) => {
    const rows = matrix.length;
    const columns = rows > 0 ? (matrix[0] as number[]).length : 0;
    if (rows * columns === 0) {
      throw new RemoteError(ErrorCodes.InvalidParams, "Invalid params: matrix is empty");
    }
    let sum = 0;
    for (const row of matrix) for (const value of row) sum += value; // row by row, in order
    return { sum, avg: sum / (rows * columns) };
  });

  await worker.start();
}

function childEnv(name: string): Promise<string | null> {
  return new Promise((resolve, reject) => {
    execFile("/usr/bin/env", [], { env: process.env }, (error, stdout) => {
      if (error) return reject(error);
      const prefix = `${name}=`;
      const line = stdout.split("\n").find((entry) => entry.startsWith(prefix));
      resolve(line === undefined ? null : line.slice(prefix.length));
    });
  });
}
