/**
 * Memory bounds with a real worker process and a real parent socket (PROTOCOL.md 2.6, 4.5), each
 * found by an outside drill: what the worker holds when its parent sends faster than a handler
 * runs, or reads nothing, and what a large frame costs it.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Socket } from "node:net";

import { MessagePackCodec } from "@aspect-ipc/worker";

import { connectedWorker, fixture, type ConnectedWorkerOptions, type WorkerProcess } from "./helpers/parent.js";

const MiB = 1024 * 1024;

/** The memory fixture worker, connected; killed when `t` ends. */
function memoryWorker(t: { after(fn: () => void): void }, options: Omit<ConnectedWorkerOptions, "script"> = {}) {
  return connectedWorker(t, { ...options, script: fixture("memory") });
}

/** What the parent still holds to write once the worker stopped reading: writableLength, once steady for 500 ms. */
async function stalledBytes(socket: Socket): Promise<number> {
  let last = -1;
  let steadySince = Date.now();
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(50)) {
    const now = socket.writableLength;
    if (now !== last) {
      last = now;
      steadySince = Date.now();
    } else if (Date.now() - steadySince >= 500) {
      return now;
    }
  }
  return last;
}

async function result(worker: WorkerProcess, method: string, params?: unknown): Promise<unknown> {
  const response = await worker.request(method, params);
  if (!("result" in response)) throw new Error(`${method} failed: ${JSON.stringify(response)}`);
  return response.result;
}

async function handledInOrder(worker: WorkerProcess, count: number): Promise<void> {
  const expected = Array.from({ length: count }, (_, n) => n);
  for (const deadline = Date.now() + 20_000; ; await sleep(50)) {
    const handled = (await result(worker, "handled")) as number[];
    if (handled.length === count || Date.now() > deadline) {
      assert.deepEqual(handled, expected, "every notification handled, in order: none dropped");
      return;
    }
  }
}

test("notifications waiting for their slow handler are bounded at 16 MiB: the worker stops reading, drops none", async (t) => {
  const { worker, parent } = await memoryWorker(t);
  const count = 40;
  const data = new Uint8Array(MiB);
  for (let n = 0; n < count; n++) parent.send({ jsonrpc: "2.0", method: "slow", params: { n, data } });
  // The handler runs one, about 16 MiB wait for it, and the worker reads no more (without the
  // bound it read all 40 MiB at once: 200 notifications of 5 MB took 861 MB).
  const unread = await stalledBytes(parent.socket);
  assert.ok(unread > 15 * MiB, `the worker stopped reading: ${unread} bytes still unread by it`);
  await result(worker, "release");
  await handledInOrder(worker, count);
});

test("notifications waiting for their slow handler are bounded at 1,024: the worker stops reading, drops none", async (t) => {
  const { worker, parent } = await memoryWorker(t);
  const count = 3000;
  const data = new Uint8Array(8 * 1024);
  for (let n = 0; n < count; n++) parent.send({ jsonrpc: "2.0", method: "slow", params: { n, data } });
  // 1,024 notifications of 8 KiB are 8 MiB, under the bytes bound: the number stops it.
  const unread = await stalledBytes(parent.socket);
  assert.ok(unread > 10 * MiB, `the worker stopped reading: ${unread} bytes still unread by it`);
  await result(worker, "release");
  await handledInOrder(worker, count);
});

test("requests to a parent that reads nothing wait for room before they are encoded; all go once it reads", async (t) => {
  const { worker, parent } = await memoryWorker(t, { deafParent: true });
  const count = 40;
  await result(worker, "flood", { k: count, size: 1_000_000 });
  await sleep(300);
  // One frame handed to the socket, one queued behind it; the other 38 wait unencoded (without
  // the wait each encoded a copy of the shared string: 100 requests of 5 MB took 481 MB).
  const { encodes } = (await result(worker, "flooded")) as { encodes: number };
  assert.ok(encodes <= 3, `${encodes} of ${count} requests encoded while the parent read nothing`);

  parent.socket.resume();
  const answered = new Set<unknown>();
  for (const deadline = Date.now() + 20_000; answered.size < count && Date.now() < deadline; await sleep(20)) {
    for (const message of parent.messages.items) {
      if (message.method === "sink" && !answered.has(message.id)) {
        answered.add(message.id);
        parent.send({ jsonrpc: "2.0", id: message.id, result: null });
      }
    }
  }
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(20)) {
    if (((await result(worker, "flooded")) as { answered: number }).answered === count) break;
  }
  assert.deepEqual(await result(worker, "flooded"), { encodes: count, answered: count });
});

test("a large Buffer is sent without a copy: requests sharing one hold no copy of it while the parent reads nothing", async (t) => {
  const { worker } = await memoryWorker(t, { deafParent: true });
  const size = 16 * MiB;
  // Copied into their frames, the two frames taken before the others wait for room held 32 MiB.
  const grown = (await result(worker, "floodBytes", { k: 16, size })) as number;
  assert.ok(grown < size / 4, `the worker's ArrayBuffer memory grew by ${grown} bytes`);
});

test("a Buffer sent without a copy is written before notify() resolves: changing it then changes nothing", async (t) => {
  const { worker, parent } = await memoryWorker(t);
  const size = 8 * MiB;
  await result(worker, "notifyBig", { size });
  const big = await parent.waitFor((message) => message.method === "big", "the big notification");
  const data = (big.params as { data: Uint8Array }).data;
  assert.equal(data.byteLength, size);
  assert.ok(data.every((byte) => byte === 0x61), "the bytes as they were when notify() was called");
});

test("a large frame is received into one buffer of its size: it costs the worker its size once, not twice", { skip: !existsSync("/proc/self/status") }, async (t) => {
  const size = 256 * MiB;
  const { worker, parent } = await memoryWorker(t, { env: { ASPECT_IPC_MAX_FRAME_SIZE: String(size + MiB) } });
  const before = (await result(worker, "hwm")) as number;
  // {"jsonrpc": "2.0", "id": "big", "method": "size", "params": {"data": <bin 32 of size bytes>}},
  // written as the envelope's bytes then the payload (no copy of it here either).
  const envelope = new MessagePackCodec().encode({ jsonrpc: "2.0", id: "big", method: "size", params: { data: new Uint8Array(0) } });
  const head = envelope.subarray(0, envelope.byteLength - 2); // without the empty bin 8, c4 00
  const frame = Buffer.alloc(4 + head.byteLength + 5);
  frame.writeUInt32BE(head.byteLength + 5 + size, 0);
  frame.set(head, 4);
  frame[4 + head.byteLength] = 0xc6;
  frame.writeUInt32BE(size, 4 + head.byteLength + 1);
  parent.writeRaw(frame);
  parent.writeRaw(new Uint8Array(size).fill(7));
  const answer = await parent.waitFor((message) => message.id === "big", "the answer to size", 60_000);
  assert.equal(answer.result, size);
  const grown = ((await result(worker, "hwm")) as number) - before;
  // Pieces kept then joined took twice the size (a 2 GiB payload peaked at 4.1 GB).
  assert.ok(grown < 1.5 * size, `the worker's peak memory grew by ${(grown / MiB).toFixed(0)} MiB for a ${size / MiB} MiB frame`);
});
