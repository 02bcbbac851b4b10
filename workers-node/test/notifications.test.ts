/**
 * Notification order (decision D16): on each channel, notification handlers run one at a time, in
 * arrival order; requests keep running concurrently and are never queued behind a notification.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { channelPair } from "./helpers/channels.js";

test("notification handlers run one at a time, in order; a failing one does not stop the next", async () => {
  const { worker, parent, dispose } = await channelPair();
  try {
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let allDone!: () => void;
    const done = new Promise<void>((resolve) => (allDone = resolve));
    worker.onNotification("step", async ({ n }: { n: number }) => {
      log.push(`start ${n}`);
      if (n === 1) await gate;
      if (n === 2) throw new Error("step 2 fails");
      log.push(`end ${n}`);
      if (n === 3) allDone();
    });
    worker.onRequest("log", () => [...log]);
    worker.start();
    parent.start();
    await parent.notify("step", { n: 1 });
    await parent.notify("step", { n: 2 });
    await parent.notify("step", { n: 3 });
    // A request after them is not held up by the unfinished first one.
    assert.deepEqual(await parent.request("log"), ["start 1"]);
    release();
    await done;
    assert.deepEqual(log, ["start 1", "end 1", "start 2", "start 3", "end 3"]);
  } finally {
    await dispose();
  }
});
