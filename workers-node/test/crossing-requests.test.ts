/**
 * Two channels that send each other large requests at once, over a real socket (PROTOCOL.md 2.6,
 * 4.5): each side's writes wait for the other to read, so each must go on reading meanwhile. Before,
 * a side stopped reading as soon as 1 MiB waited in its write queue, its own requests included, and
 * two sides sending four requests of 1 MiB each hung for good.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import type { Channel } from "@aspect-ipc/worker";

import { channelPair } from "./helpers/channels.js";

const MiB = 1024 * 1024;

/** The payload of request `n` from `side`: 1 MiB whose bytes say whose it is. */
function payload(side: number, n: number): Uint8Array {
  const data = new Uint8Array(MiB).fill((side * 64 + n) % 251);
  data[0] = side;
  data[1] = n;
  return data;
}

/** Sends `count` echo requests of 1 MiB at once and checks every answer is its own payload back. */
async function echoAll(channel: Channel, side: number, count: number): Promise<void> {
  const requests = Array.from({ length: count }, (_, n) => channel.request<{ n: number; data: Uint8Array }>("echo", { n, data: payload(side, n) }));
  const answers = await Promise.all(requests);
  answers.forEach((answer, n) => {
    assert.equal(answer.n, n);
    assert.deepEqual(answer.data, payload(side, n), `side ${side}, request ${n}: its own payload back, whole`);
  });
}

/** How long a run may take before it counts as hung: its channels are closed then, so that a hang fails the test instead of holding it. */
const HANG_MS = 30_000;

for (const count of [4, 8, 16]) {
  test(`${count} concurrent requests of 1 MiB each way between two channels all complete, every answer its own`, async () => {
    const { worker, parent, dispose } = await channelPair();
    let closing: Promise<void> | null = null;
    const close = (): Promise<void> => (closing ??= dispose());
    let hung = false;
    const guard = setTimeout(() => {
      hung = true;
      void close();
    }, HANG_MS);
    try {
      for (const channel of [worker, parent]) channel.onRequest("echo", (params: unknown) => params);
      worker.start();
      parent.start();
      await Promise.all([echoAll(worker, 1, count), echoAll(parent, 2, count)]).catch((error: unknown) => {
        assert.ok(!hung, `both sides hung with ${count} requests of 1 MiB each way`);
        throw error;
      });
    } finally {
      clearTimeout(guard);
      await close();
    }
  });
}
