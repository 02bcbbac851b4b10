/**
 * A request's `timeoutMs` of any size, and what is refused (README: "Sending"; handlers.ts).
 *
 * Node's setTimeout fires a delay over 2^31-1 ms (or Infinity) after 1 ms, with a
 * TimeoutOverflowWarning: a "very long" or "no limit" timeout used to fail the request at once,
 * claiming it had waited that long. Infinity is no limit; a longer finite timeout is honoured in
 * full. Anything but a number >= 0 is refused at the call, and nothing is sent.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";

import { RequestTimeout } from "@aspect-ipc/worker";

import { channelPair, channelToDeafPeer, dataChannel } from "./helpers/channels.js";

/** Collects the process's TimeoutOverflowWarnings while a test runs. */
function overflowWarnings(t: { after(fn: () => void): void }): Error[] {
  const seen: Error[] = [];
  const listener = (warning: Error): void => {
    if (warning.name === "TimeoutOverflowWarning") seen.push(warning);
  };
  process.on("warning", listener);
  t.after(() => process.off("warning", listener));
  return seen;
}

/** Lets every pending I/O callback and microtask run (setImmediate is never mocked here). */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await nextTurn();
}

test("a timeoutMs past setTimeout's range, or Infinity, waits for the answer, and nothing is printed", async (t) => {
  const warnings = overflowWarnings(t);
  const { worker, parent, dispose } = await channelPair();
  t.after(dispose);
  // Answered after a few real milliseconds: a timer clamped to 1 ms would fire first.
  parent.onRequest("slow", async () => {
    await sleep(30);
    return "done";
  });
  worker.start();
  parent.start();
  for (const timeoutMs of [2 ** 31, 3e9, Number.MAX_SAFE_INTEGER, 1e300, Infinity]) {
    assert.equal(await worker.request("slow", {}, { timeoutMs }), "done", `timeoutMs ${timeoutMs}`);
    const call = worker.stream("slow", {}, { timeoutMs });
    for await (const item of call) assert.fail(`no items expected, got ${String(item)}`);
    assert.equal(call.result, "done", `stream, timeoutMs ${timeoutMs}`);
  }
  await settle();
  assert.deepEqual(warnings.map((warning) => warning.message), []);
});

test("a request waiting for room with a timeoutMs past setTimeout's range goes out once there is room", async (t) => {
  const warnings = overflowWarnings(t);
  // The peer reads nothing yet: the first notification fills the socket, the second the outbox.
  const { channel, peer: peerEnd } = await channelToDeafPeer(t);
  const peer = dataChannel(peerEnd, { name: "parent" });
  t.after(() => peer.close());
  peer.onRequest("m", () => "answered");
  const outcomes: unknown[] = [];
  const answers = [3e9, Infinity].map((timeoutMs) => channel.request("m", {}, { timeoutMs }).then((result) => outcomes.push(result), (error: unknown) => outcomes.push(error)));
  await sleep(30); // a timer clamped to 1 ms would have given up on both by now
  assert.deepEqual(outcomes, [], "both still wait for room");
  peer.start();
  await Promise.all(answers);
  assert.deepEqual(outcomes, ["answered", "answered"]);
  assert.deepEqual(warnings.map((warning) => warning.message), []);
});

test("a timeoutMs over 2^31-1 ms fires when it says, not before; Infinity never does (mocked clock)", async (t) => {
  const { worker, parent, dispose } = await channelPair();
  let release = (): void => undefined;
  const released = new Promise<string>((resolve) => (release = () => resolve("released")));
  let received = (): void => undefined;
  let arrived = new Promise<void>((resolve) => (received = resolve));
  parent.onRequest("wait", () => {
    received();
    return released;
  });
  worker.start();
  parent.start();
  t.mock.timers.enable({ apis: ["setTimeout"] });
  t.after(async () => {
    t.mock.timers.reset();
    release();
    await dispose();
  });

  const finite = 2 ** 31 + 5;
  let outcome: unknown = "pending";
  worker.request("wait", {}, { timeoutMs: finite }).then(
    (result) => (outcome = result),
    (error: unknown) => (outcome = error),
  );
  // Read through a function: the callbacks change it where the compiler's narrowing cannot see.
  const current = (): unknown => outcome;
  await arrived;
  t.mock.timers.tick(1);
  t.mock.timers.tick(2 ** 31 - 2); // 2^31-1 ms in all: the first step of the wait
  await settle();
  assert.equal(current(), "pending", "not timed out after 1 ms, nor after 2^31-1 ms");
  t.mock.timers.tick(5);
  await settle();
  assert.equal(current(), "pending", "one millisecond early");
  t.mock.timers.tick(1);
  await settle();
  const timedOut = current();
  assert.ok(timedOut instanceof RequestTimeout, `timed out at 2^31+5 ms, got ${String(timedOut)}`);
  assert.equal(timedOut.message, `request wait timed out after ${finite} ms: it was sent, and the peer was sent $/cancelRequest`);

  arrived = new Promise<void>((resolve) => (received = resolve));
  const unlimited = worker.request("wait", {}, { timeoutMs: Infinity });
  let settled = false;
  unlimited.then(
    () => (settled = true),
    () => (settled = true),
  );
  await arrived;
  t.mock.timers.tick(Number.MAX_SAFE_INTEGER);
  await settle();
  assert.equal(settled, false, "Infinity never times out");
  release();
  assert.equal(await unlimited, "released");
});

test("a timeoutMs that is not a number >= 0 is refused at the call, naming the option, and nothing is sent", async (t) => {
  const { worker, parent, dispose } = await channelPair();
  t.after(dispose);
  let calls = 0;
  parent.onRequest("count", () => ++calls);
  worker.start();
  parent.start();
  const refused: Array<[unknown, typeof TypeError | typeof RangeError, string]> = [
    ["5", TypeError, '"5"'],
    [null, TypeError, "null"],
    [true, TypeError, "true"],
    [10n, TypeError, "10n"],
    [[], TypeError, "an array"],
    [NaN, RangeError, "NaN"],
    [-1, RangeError, "-1"],
    [-Infinity, RangeError, "-Infinity"],
  ];
  for (const [value, kind, shown] of refused) {
    const timeoutMs = value as number;
    const expected = (error: unknown): boolean => {
      assert.ok(error instanceof kind, `${shown}: ${String(error)}`);
      assert.equal(error.message, `timeoutMs must be a number of milliseconds >= 0 (Infinity for no limit), not ${shown}`);
      return true;
    };
    await assert.rejects(worker.request("count", {}, { timeoutMs }), expected);
    await assert.rejects(worker.request("count", {}, { timeoutMs, input: [1] }), expected);
    await assert.rejects(async () => {
      for await (const item of worker.stream("count", {}, { timeoutMs })) assert.fail(`no items expected, got ${String(item)}`);
    }, expected);
  }
  // Nothing reached the peer: its first call is this one.
  assert.equal(await worker.request("count", {}, { timeoutMs: 0.5e4 }), 1);
});
