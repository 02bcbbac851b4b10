/**
 * The start-up handshake against the real test worker process: $/ready, listening rules, $/hello,
 * one authenticated connection at a time, oversized frames from strangers, environment errors.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { test, type TestContext } from "node:test";

import { ErrorCodes } from "@aspect-ipc/worker";

import { TEST_WORKER, WorkerProcess, fixture, tempDirectory } from "./helpers/parent.js";

/** A test worker with a data path in a fresh directory, killed and cleaned up after the test. */
function startWorker(t: TestContext, env: Record<string, string | undefined> = {}, script = TEST_WORKER): WorkerProcess {
  const directory = tempDirectory();
  const worker = new WorkerProcess(script, { dataPath: join(directory.path, "d.sock"), env });
  t.after(() => {
    worker.kill();
    directory.remove();
  });
  return worker;
}

test("$/ready announces the worker, then $/hello authenticates the data connection; socket mode 0600", async (t) => {
  const worker = startWorker(t);
  const ready = await worker.ready();
  assert.deepEqual(ready, {
    protocol: 1,
    sdk: "aspect-ipc-node",
    sdkVersion: "0.1.0",
    language: "node",
    pid: worker.child.pid,
    dataPath: worker.dataPath,
  });
  const stats = statSync(worker.dataPath as string);
  assert.ok(stats.isSocket());
  assert.equal(stats.mode & 0o777, 0o600);

  const connection = await worker.connectData();
  const hello = await connection.request("$/hello", { token: worker.token, protocol: 1 });
  assert.deepEqual(hello, { jsonrpc: "2.0", id: 1, result: { protocol: 1, workerId: "worker-1", pid: worker.child.pid } });
  assert.deepEqual((await connection.request("add", { a: 40, b: 2 })).result, 42);
  assert.equal(worker.control.items.length, 1, "nothing but $/ready on control");
});

test("messages pipelined right behind $/hello wait for the authentication and are then served in order", async (t) => {
  const worker = startWorker(t);
  await worker.ready();
  const connection = await worker.connectData();
  connection.send({ jsonrpc: "2.0", id: 1, method: "$/hello", params: { token: worker.token, protocol: 1 } });
  connection.send({ jsonrpc: "2.0", id: 2, method: "add", params: { a: 1, b: 2 } });
  connection.send({ jsonrpc: "2.0", id: 3, method: "$/ping" });
  await connection.waitFor((m) => m.id === 3, "the ping");
  assert.deepEqual(
    connection.messages.items.map((m) => [m.id, m.result]),
    [
      [1, { protocol: 1, workerId: "worker-1", pid: worker.child.pid }],
      [2, 3],
      [3, {}],
    ],
  );
});

test("a control-only worker sends $/ready with dataPath null", async (t) => {
  const worker = new WorkerProcess(TEST_WORKER);
  t.after(() => worker.kill());
  assert.equal((await worker.ready()).dataPath, null);
  assert.deepEqual((await worker.request("add", { a: 1, b: 2 })).result, 3);
});

test("a wrong token is answered -32003 and the connection closed; the right one then works", async (t) => {
  const worker = startWorker(t);
  await worker.ready();
  const wrongToken = "0".repeat(64);
  const intruder = await worker.connectData();
  const answer = await intruder.request("$/hello", { token: wrongToken, protocol: 1 });
  assert.deepEqual(answer.error, { code: ErrorCodes.Unauthorized, message: "unauthorized: wrong or missing token" });
  await intruder.closed;

  const missing = await worker.connectData();
  assert.equal(((await missing.request("$/hello", { protocol: 1 })).error as { code: number }).code, ErrorCodes.Unauthorized);
  await missing.closed;

  const parent = await worker.openData();
  assert.deepEqual((await parent.request("echo", ["ok"])).result, ["ok"]);
  assert.ok(!worker.stderr.includes(worker.token) && !worker.stderr.includes(wrongToken), "no token is ever logged");
});

test("a first frame other than $/hello is answered -32003 and the connection closed", async (t) => {
  const worker = startWorker(t);
  await worker.ready();
  const connection = await worker.connectData();
  const answer = await connection.request("echo", [1]);
  assert.deepEqual(answer, {
    jsonrpc: "2.0",
    id: 1,
    error: { code: ErrorCodes.Unauthorized, message: "unauthorized: the first message on a data connection must be a $/hello request" },
  });
  await connection.closed;

  const notifier = await worker.connectData();
  notifier.send({ jsonrpc: "2.0", method: "$/hello", params: { token: worker.token, protocol: 1 } });
  const reply = await notifier.waitFor(() => true, "an answer to a $/hello notification");
  assert.deepEqual(reply.id, null);
  assert.equal((reply.error as { code: number }).code, ErrorCodes.Unauthorized);
  await notifier.closed;
});

test("a $/hello with another protocol version is answered -32007 with the supported versions", async (t) => {
  const worker = startWorker(t);
  await worker.ready();
  const connection = await worker.connectData();
  const answer = await connection.request("$/hello", { token: worker.token, protocol: 2 });
  const error = answer.error as { code: number; data: unknown };
  assert.equal(error.code, ErrorCodes.ProtocolVersionMismatch);
  assert.deepEqual(error.data, { supported: [1] });
  await connection.closed;
});

test("one authenticated connection at a time: a second one is refused without disturbing the first", async (t) => {
  const worker = startWorker(t);
  await worker.ready();
  const first = await worker.openData();
  const second = await worker.connectData();
  const refused = await second.request("$/hello", { token: worker.token, protocol: 1 });
  assert.deepEqual(refused.error, { code: ErrorCodes.Unauthorized, message: "data channel already connected" });
  await second.closed;
  assert.deepEqual((await first.request("add", { a: 1, b: 1 })).result, 2);

  first.close();
  await first.closed;
  const third = await worker.openData();
  assert.deepEqual((await third.request("add", { a: 2, b: 2 })).result, 4);
});

test("before $/hello a first frame over 64 KiB (or max_frame_size) closes the connection silently; the authenticated connection is unaffected", async (t) => {
  const worker = startWorker(t, { ASPECT_IPC_MAX_FRAME_SIZE: "4096" });
  await worker.ready();
  const parent = await worker.openData();
  for (const header of [Uint8Array.of(0xff, 0xff, 0xff, 0xff), Uint8Array.of(0, 0, 0x10, 0x01)]) {
    const stranger = await worker.connectData();
    stranger.writeRaw(header);
    await stranger.closed;
    assert.equal(stranger.messages.items.length, 0, "no -32005 before $/hello");
  }
  // With the default max_frame_size, the pre-hello limit is 64 KiB.
  const roomy = startWorker(t);
  await roomy.ready();
  const stranger = await roomy.connectData();
  stranger.writeRaw(Uint8Array.of(0, 1, 0, 1));
  await stranger.closed;
  assert.equal(stranger.messages.items.length, 0);
  assert.deepEqual((await parent.request("add", { a: 1, b: 2 })).result, 3);
});

test("an oversized frame on the authenticated connection: one exact -32005, then the connection closes at once (nothing more is read)", async (t) => {
  const worker = startWorker(t, { ASPECT_IPC_MAX_FRAME_SIZE: "4096" });
  await worker.ready();
  const header = Buffer.alloc(4);
  header.writeUInt32BE(0xffffffff);

  // The header alone: the courtesy -32005 arrives, exact, then the close.
  const parent = await worker.openData();
  assert.deepEqual((await parent.request("echo", [new Uint8Array([1, 2, 3])])).result, [new Uint8Array([1, 2, 3])]);
  parent.writeRaw(header);
  const tooLarge = await parent.waitFor((m) => m.id === null, "-32005 on the authenticated connection");
  assert.deepEqual(tooLarge.error, {
    code: ErrorCodes.MessageTooLarge,
    message: "frame of 4294967295 bytes exceeds max_frame_size of 4096 bytes",
    data: { size: 4294967295, limit: 4096 },
  });
  await parent.closed;
  await worker.waitStderr("frame of 4294967295 bytes exceeds max_frame_size of 4096 bytes");

  // The header, then what it announced, sent on and on: the worker reads none of it and closes.
  // (The -32005 is not looked for here: a close that meets our writes resets the connection, and
  // Node then drops what was not yet read, the courtesy message included; PROTOCOL.md 2.3 makes
  // it a MAY for that reason.)
  const flooding = await worker.openData();
  flooding.writeRaw(header);
  let sent = 0;
  const chunk = new Uint8Array(256 * 1024);
  while (!flooding.isClosed && sent < 512 * 1024 * 1024) {
    if (!flooding.socket.write(chunk)) await new Promise((resolve) => setTimeout(resolve, 5));
    sent += chunk.length;
  }
  await flooding.closed;
  assert.ok(sent < 64 * 1024 * 1024, `the worker read on: ${sent} bytes sent before the close`);

  const again = await worker.openData();
  assert.deepEqual((await again.request("add", { a: 3, b: 4 })).result, 7);
});

test("$/hello on the authenticated connection is refused -32600 and the connection stays; $/shutdown on data is -32601", async (t) => {
  const worker = startWorker(t);
  await worker.ready();
  const parent = await worker.openData();
  const again = await parent.request("$/hello", { token: worker.token, protocol: 1 });
  assert.deepEqual(again.error, { code: ErrorCodes.InvalidRequest, message: "Invalid Request: already authenticated" });
  parent.send({ jsonrpc: "2.0", method: "$/hello", params: { token: worker.token, protocol: 1 } });
  parent.send({ jsonrpc: "2.0", method: "$/shutdown" });
  const shutdown = await parent.request("$/shutdown", { timeout: 0 });
  assert.deepEqual(shutdown.error, { code: ErrorCodes.MethodNotFound, message: "$/shutdown is a control-channel method" });
  assert.deepEqual((await parent.request("add", { a: 1, b: 1 })).result, 2);
  assert.deepEqual((await worker.request("add", { a: 1, b: 1 })).result, 2, "no shutdown happened");
});

test("a float id, or a float protocol, in $/hello is refused", async (t) => {
  const worker = startWorker(t);
  await worker.ready();
  const floatId = await worker.connectData();
  // {"jsonrpc":"2.0","id":1.0,"method":"$/hello",...}: -32003 with id null.
  floatId.writeRaw(helloFrame(worker.token, "cb3ff0000000000000", "01"));
  const refused = await floatId.waitFor(() => true, "the refusal");
  assert.equal(refused.id, null);
  assert.equal((refused.error as { code: number }).code, ErrorCodes.Unauthorized);
  await floatId.closed;
  const floatProtocol = await worker.connectData();
  floatProtocol.writeRaw(helloFrame(worker.token, "01", "cb3ff0000000000000"));
  const invalid = await floatProtocol.waitFor(() => true, "the refusal");
  assert.equal(invalid.id, 1);
  assert.equal((invalid.error as { code: number }).code, ErrorCodes.InvalidParams);
  await floatProtocol.closed;
});

/** A `$/hello` frame with the id and the protocol given as MessagePack hex. */
function helloFrame(token: string, idHex: string, protocolHex: string): Uint8Array {
  const tokenHex = `d940${Buffer.from(token).toString("hex")}`;
  const payload = Buffer.from(
    `84a76a736f6e727063a3322e30a26964${idHex}a66d6574686f64a7242f68656c6c6fa6706172616d7382a5746f6b656e${tokenHex}a870726f746f636f6c${protocolHex}`,
    "hex",
  );
  const header = Buffer.alloc(4);
  header.writeUInt32BE(payload.length);
  return Buffer.concat([header, payload]);
}

test("a connection that never says $/hello is closed after the hello timeout", async (t) => {
  const worker = startWorker(t, {}, fixture("short-hello-timeout"));
  await worker.ready();
  const silent = await worker.connectData();
  await silent.closed;
  await worker.waitStderr("no $/hello within 200 ms");
  const parent = await worker.openData();
  assert.deepEqual((await parent.request("echo", { a: 1 })).result, { a: 1 });
});

test("hooks run in order, and dataReady/ready finish before the $/hello response is written", async (t) => {
  const worker = startWorker(t, {}, fixture("hooks"));
  await worker.ready();
  await worker.waitStderr("hook: dataListening");
  assert.equal(worker.stderr, `hook: controlReady\nhook: dataListening ${worker.dataPath}\n`);
  await worker.openData();
  // The hooks left their marker files before the $/hello response was written.
  const directory = dirname(worker.dataPath as string);
  assert.ok(existsSync(join(directory, "data-ready")) && existsSync(join(directory, "ready")));
  await worker.waitStderr("hook: ready\n");
  assert.equal(
    worker.stderr,
    `hook: controlReady\nhook: dataListening ${worker.dataPath}\nhook: dataConnected\nhook: dataReady\nhook: ready\n`,
  );
  worker.closeStdin();
  assert.deepEqual(await worker.exited, { code: 0, signal: null });
  assert.match(worker.stderr, /hook: shuttingDown stdin_eof\nhook: stopped\n$/);
});

test("a data path without a token, or an invalid frame size, refuses to start with exit code 2", async (t) => {
  const noToken = startWorker(t, { ASPECT_IPC_TOKEN: "" });
  assert.deepEqual(await noToken.exited, { code: 2, signal: null });
  assert.match(noToken.stderr, /ASPECT_IPC_TOKEN is missing or empty/);
  assert.equal(noToken.control.items.length, 0, "no $/ready");

  for (const [name, value] of [
    ["ASPECT_IPC_MAX_FRAME_SIZE", "64MiB"],
    ["ASPECT_IPC_MAX_FRAME_SIZE", "+4096"],
    ["ASPECT_IPC_MAX_FRAME_SIZE", "1023"],
    ["ASPECT_IPC_MAX_FRAME_SIZE", "4294967296"],
    ["ASPECT_IPC_MAX_LINE_LENGTH", " 4096"],
    ["ASPECT_IPC_MAX_LINE_LENGTH", "0"],
  ] as const) {
    const badSize = startWorker(t, { [name]: value });
    assert.deepEqual(await badSize.exited, { code: 2, signal: null }, `${name}=${value}`);
    assert.ok(badSize.stderr.includes(`${name} is ${JSON.stringify(value)}: it must be 1 to 10 ASCII digits`), badSize.stderr);
    assert.ok(!badSize.stderr.includes(badSize.token));
  }
});

test("ASPECT_IPC_MAX_LINE_LENGTH is the control limit both ways; empty size variables mean the defaults", async (t) => {
  const worker = startWorker(t, { ASPECT_IPC_MAX_LINE_LENGTH: "1024", ASPECT_IPC_MAX_FRAME_SIZE: "" });
  await worker.ready();
  worker.writeRaw(`{"jsonrpc":"2.0","id":1,"method":"echo","params":["${"x".repeat(1100)}"]}\n`);
  const tooLong = await worker.waitControl((m) => m.id === null, "the -32005");
  assert.deepEqual(tooLong.error, {
    code: ErrorCodes.MessageTooLarge,
    message: "line of 1154 bytes exceeds max_line_length of 1024 bytes",
    data: { size: 1154, limit: 1024 },
  });
  // A response over the limit (here an error response) is replaced by -32005 with the request's id (D1).
  const failed = await worker.request("fail", { message: "y".repeat(950) });
  assert.equal((failed.error as { code: number }).code, ErrorCodes.MessageTooLarge);
  assert.match((failed.error as { message: string }).message, /^response of \d+ bytes exceeds max_line_length of 1024 bytes$/);
  // The data channel keeps the 64 MiB default.
  const parent = await worker.openData();
  const big = new Uint8Array(1024 * 1024);
  assert.deepEqual((await parent.request("echo", [big])).result, [big]);
});

test("environment values are UTF-8 whatever the locale (5.1): a non-ASCII worker id under a Latin-1 locale comes back whole in $/hello", async (t) => {
  // Node encodes a child's environment strings as UTF-8, and the worker's process.env decodes
  // them as UTF-8, the locale unread (it need not be installed): nothing for the SDK to refuse.
  const workerId = "wörker-✓";
  const locale = "en_US.ISO-8859-1";
  const worker = startWorker(t, { ASPECT_IPC_WORKER_ID: workerId, LANG: locale, LC_ALL: locale, LC_CTYPE: locale });
  await worker.ready();
  const environ = `/proc/${worker.child.pid}/environ`;
  if (existsSync(environ)) {
    // The bytes the worker was given: the id's UTF-8, under a locale that names another encoding.
    const entries = readFileSync(environ).toString("latin1").split("\0");
    assert.ok(entries.includes(`ASPECT_IPC_WORKER_ID=${Buffer.from(workerId, "utf8").toString("latin1")}`), "the id's UTF-8 bytes");
    assert.ok(entries.includes(`LC_ALL=${locale}`));
  }
  const connection = await worker.connectData();
  const hello = await connection.request("$/hello", { token: worker.token, protocol: 1 });
  assert.deepEqual(hello.result, { protocol: 1, workerId, pid: worker.child.pid });
});
