/**
 * The pipe server's listening rules, in process, on real sockets.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, lstatSync, renameSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import type { Server } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { Worker as Thread } from "node:worker_threads";

import { StartupError, TransportFactory, type PipeServer } from "@aspect-ipc/worker";

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

/**
 * Runs `hook` on the server's 'listening' event, before `listen()` resolves and before it checks
 * the socket file: the moment right after bind() created the file. (The net.Server is private.)
 */
function afterBind(server: PipeServer, hook: () => void): void {
  (server as unknown as { server: Server }).server.once("listening", hook);
}

/** Runs `body` with the process umask set to `mask`. */
async function withUmask<T>(mask: number, body: () => Promise<T>): Promise<T> {
  const previous = process.umask(mask);
  try {
    return await body();
  } finally {
    process.umask(previous);
  }
}

test("the socket file is 0600 from the moment bind creates it, whatever the umask", async (t) => {
  const directory = tempDirectory();
  t.after(() => directory.remove());
  for (const mask of [0, 0o022]) {
    const path = join(directory.path, `u${mask}.sock`);
    const server = TransportFactory.createPipeServer();
    t.after(() => server.close());
    let atBind = -1;
    afterBind(server, () => (atBind = lstatSync(path).mode));
    await withUmask(mask, async () => {
      await server.listen(path);
      assert.equal(process.umask(), mask, "the umask is restored");
    });
    assert.equal(atBind & 0o170000, 0o140000, "a socket");
    assert.equal(atBind & 0o777, 0o600, `umask ${mask.toString(8)}: mode right after bind`);
    assert.equal(lstatSync(path).mode & 0o777, 0o600);
  }
});

test("a symlink swapped in for the fresh socket: its target keeps its mode, and listen fails", async (t) => {
  const directory = tempDirectory();
  t.after(() => directory.remove());
  const target = join(directory.path, "victim");
  writeFileSync(target, "data");
  chmodSync(target, 0o644);
  const path = join(directory.path, "s.sock");
  const server = TransportFactory.createPipeServer();
  t.after(() => server.close());
  // What a local user who can write to the directory does: rename a symlink over the new socket.
  afterBind(server, () => {
    symlinkSync(target, `${path}.lnk`);
    renameSync(`${path}.lnk`, path);
  });
  const failure = await withUmask(0o022, () => server.listen(path).then(() => null, (error: unknown) => error));
  assert.equal(statSync(target).mode & 0o777, 0o644, "nothing chmods the symlink's target");
  assert.ok(failure instanceof StartupError, "listen fails");
  assert.match(failure.message, /was replaced after bind \(now a symlink\): refusing to start/);
  assert.ok(lstatSync(path).isSymbolicLink(), "the symlink is not ours to remove");
});

/** Listens on `path` in a worker thread (which cannot change the umask): "ok", or the error message. */
async function listenInThread(path: string): Promise<string> {
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    import("@aspect-ipc/worker").then(async ({ TransportFactory }) => {
      const server = TransportFactory.createPipeServer();
      try {
        await server.listen(workerData);
        await server.close();
        parentPort.postMessage("ok");
      } catch (error) {
        parentPort.postMessage(error.message);
      }
    });`;
  const thread = new Thread(code, { eval: true, workerData: path });
  try {
    return await new Promise<string>((resolve, reject) => {
      thread.once("message", resolve);
      thread.once("error", reject);
    });
  } finally {
    await thread.terminate();
  }
}

test("in a worker thread the umask cannot be narrowed: listening needs one that gives 0600 already", async (t) => {
  const directory = tempDirectory();
  t.after(() => directory.remove());
  const path = join(directory.path, "t.sock");
  const refused = await withUmask(0o022, () => listenInThread(path));
  assert.match(refused, /cannot create the socket .* with mode 0600: the umask \(0022\) cannot be changed in a worker thread/);
  assert.ok(!existsSync(path), "nothing was bound");
  assert.equal(await withUmask(0o177, () => listenInThread(path)), "ok");
});
