/**
 * The pipe server's listening rules, in process, on real sockets.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, lstatSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { StartupError, TransportFactory } from "@aspect-ipc/worker";

import { tempDirectory } from "./helpers/parent.js";

/** Leaves a stale socket file at `path`: its process is SIGKILLed, so nobody removes it. */
async function staleSocket(path: string): Promise<void> {
  const holder = spawn(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(path)}, () => process.stdout.write("up"))`]);
  await new Promise((resolve) => holder.stdout.once("data", resolve));
  holder.kill("SIGKILL");
  await new Promise((resolve) => holder.once("exit", resolve));
}

test("a stale socket is refused unless unlinkOnListen is set", async (t) => {
  const directory = tempDirectory();
  t.after(() => directory.remove());
  const path = join(directory.path, "s.sock");
  await staleSocket(path);

  const strict = TransportFactory.createPipeServer();
  await assert.rejects(strict.listen(path), (error: unknown) => error instanceof StartupError && /stale socket file/.test(error.message));
  assert.ok(lstatSync(path).isSocket(), "left in place");

  const lenient = TransportFactory.createPipeServer({ unlinkOnListen: true });
  await lenient.listen(path);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  await lenient.close();
  assert.ok(!existsSync(path), "close removes the socket file");
});

test("the socket file is removed only while it is still the one the server created", async (t) => {
  const directory = tempDirectory();
  t.after(() => directory.remove());
  const path = join(directory.path, "mine.sock");
  const moved = join(directory.path, "moved.sock");
  const first = TransportFactory.createPipeServer();
  await first.listen(path);
  renameSync(path, moved);

  const second = TransportFactory.createPipeServer();
  await second.listen(path);
  first.removeSocketFile();
  await first.close();
  assert.ok(lstatSync(path).isSocket(), "another server's socket at our old path is not ours to remove");
  await second.close();
  assert.ok(!existsSync(path));
});

test("a custom mode is applied to the socket file", async (t) => {
  const directory = tempDirectory();
  t.after(() => directory.remove());
  const path = join(directory.path, "m.sock");
  const server = TransportFactory.createPipeServer({ mode: 0o660 });
  await server.listen(path);
  assert.equal(statSync(path).mode & 0o777, 0o660);
  await server.close();
});
