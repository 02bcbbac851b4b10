/**
 * Channel behaviour over a real Unix socket, both ends in this process: dispatch, errors,
 * cancellation, timeouts, oversized and unencodable results, backpressure, frame integrity.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { test } from "node:test";

import {
  ChannelClosed,
  CodecError,
  ErrorCodes,
  LengthPrefixedFraming,
  MessagePackCodec,
  ProtocolError,
  RemoteError,
  RequestCancelled,
  RequestTimeout,
  TransportFactory,
  type IpcError,
} from "@aspect-ipc/worker";

import { channelPair, channelWithRawPeer, dataChannel } from "./helpers/channels.js";
import { tempDirectory } from "./helpers/parent.js";

test("requests and notifications flow both ways, handlers may be async and may call back", async () => {
  const { worker, parent, dispose } = await channelPair();
  try {
    const notes: unknown[] = [];
    worker.onRequest("add", async ({ a, b }: { a: number; b: number }) => a + b);
    worker.onRequest("askParent", async (_params: unknown, { peer }) => peer.request("double", [21]));
    worker.onNotification("note", (params: unknown) => void notes.push(params));
    parent.onRequest("double", ([value]: [number]) => value * 2);
    worker.start();
    parent.start();

    assert.equal(await parent.request("add", { a: 2, b: 3 }), 5);
    assert.equal(await parent.request("askParent"), 42);
    await parent.notify("note", { n: 1 });
    assert.deepEqual(await parent.request("$/ping"), {});
    assert.deepEqual(notes, [{ n: 1 }], "notification dispatched before the later request's response");
  } finally {
    await dispose();
  }
});

test("a slow handler does not hold up other requests", async () => {
  const { worker, parent, dispose } = await channelPair();
  try {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    worker.onRequest("slow", async () => {
      await gate;
      return "slow";
    });
    worker.onRequest("fast", () => "fast");
    worker.start();
    parent.start();
    const slow = parent.request("slow");
    assert.equal(await parent.request("fast"), "fast");
    release();
    assert.equal(await slow, "slow");
  } finally {
    await dispose();
  }
});

test("handler failures become JSON-RPC errors; unknown methods get -32601", async () => {
  const { worker, parent, dispose } = await channelPair();
  try {
    class ValidationError extends Error {}
    worker.onRequest("plain", () => {
      throw new ValidationError("bad input");
    });
    worker.onRequest("typed", async () => {
      throw new RemoteError(42, "custom", { detail: [1, 2] });
    });
    worker.onRequest("thrownString", () => {
      throw "just a string";
    });
    worker.start();
    parent.start();

    await assert.rejects(parent.request("plain"), (error: unknown) => {
      assert.ok(error instanceof RemoteError);
      assert.equal(error.code, ErrorCodes.HandlerError);
      assert.equal(error.message, "bad input");
      const { type, traceback } = error.data as { type: string; traceback: string };
      assert.equal(type, "ValidationError");
      assert.match(traceback, /^Error: bad input\n {4}at /); // err.stack, as Node writes it (PROTOCOL.md 4.10)
      return true;
    });
    await assert.rejects(parent.request("typed"), (error: unknown) => {
      assert.ok(error instanceof RemoteError);
      assert.deepEqual([error.code, error.message, error.data], [42, "custom", { detail: [1, 2] }]);
      return true;
    });
    await assert.rejects(parent.request("thrownString"), { code: ErrorCodes.HandlerError, message: "just a string" });
    await assert.rejects(parent.request("nope"), { code: ErrorCodes.MethodNotFound, message: "Method not found: nope" });
    await assert.rejects(parent.request("$/unknown"), { code: ErrorCodes.MethodNotFound });
  } finally {
    await dispose();
  }
});

test("$/ methods cannot be registered", async () => {
  const { worker, dispose } = await channelPair();
  try {
    assert.throws(() => worker.onRequest("$/shutdown", () => null), ProtocolError);
    assert.throws(() => worker.onNotification("$/cancelRequest", () => undefined), ProtocolError);
  } finally {
    await dispose();
  }
});

test("$/cancelRequest aborts the handler's signal and the request is answered -32002", async () => {
  const { worker, parent, dispose } = await channelPair();
  try {
    let sawAbort = false;
    worker.onRequest("wait", (_params: unknown, { signal }) => {
      return new Promise((_resolve, reject) => {
        signal.addEventListener("abort", () => {
          sawAbort = true;
          reject(signal.reason);
        });
      });
    });
    worker.start();
    parent.start();
    const controller = new AbortController();
    const pending = parent.request("wait", undefined, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 20));
    controller.abort();
    await assert.rejects(pending, RequestCancelled);
    // The worker side saw $/cancelRequest: its handler ended by cancellation.
    for (let tries = 0; !sawAbort && tries < 200; tries++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.ok(sawAbort, "handler signal aborted by $/cancelRequest");
  } finally {
    await dispose();
  }
});

test("after $/cancelRequest a handler that completes anyway sends its result; one that fails sends -32002", async () => {
  const { worker, peer, dispose } = await channelWithRawPeer();
  try {
    worker.onRequest("stubborn", async (_params: unknown, { signal }) => {
      await once(signal, "abort");
      return "finished anyway";
    });
    worker.onRequest("obedient", async (_params: unknown, { signal }) => {
      await once(signal, "abort");
      throw new Error("stopped");
    });
    worker.start();
    await peer.send({ jsonrpc: "2.0", id: 1, method: "stubborn" });
    await peer.send({ jsonrpc: "2.0", id: "two", method: "obedient" });
    await peer.send({ jsonrpc: "2.0", method: "$/cancelRequest", params: { id: 1 } });
    await peer.send({ jsonrpc: "2.0", method: "$/cancelRequest", params: { id: "two" } });
    await peer.send({ jsonrpc: "2.0", method: "$/cancelRequest", params: { id: 99 } }); // unknown: ignored
    const answers = await peer.received(2);
    const byId = new Map(answers.map((answer) => [answer.id, answer]));
    assert.deepEqual(byId.get(1), { jsonrpc: "2.0", id: 1, result: "finished anyway" });
    assert.deepEqual(byId.get("two"), { jsonrpc: "2.0", id: "two", error: { code: ErrorCodes.RequestCancelled, message: "request cancelled" } });
    // Exactly one response each: a ping answered next proves nothing else was queued.
    await peer.send({ jsonrpc: "2.0", id: 3, method: "$/ping" });
    const all = await peer.received(3);
    assert.equal(all.length, 3);
    assert.deepEqual(all[2], { jsonrpc: "2.0", id: 3, result: {} });
  } finally {
    await dispose();
  }
});

test("bad input is answered and the channel stays open: parse errors, invalid messages, batches", async () => {
  const { worker, peer, dispose } = await channelWithRawPeer();
  const errors: string[] = [];
  worker.onError((error) => errors.push(error.name));
  worker.start();
  try {
    await peer.send({ jsonrpc: "2.0", id: 1, method: 5 } as Record<string, unknown>);
    await peer.send({ jsonrpc: "2.0", id: 2, result: 1, error: { code: 1, message: "x" } }); // invalid response: never answered
    await peer.send([{ jsonrpc: "2.0", id: 3, method: "$/ping" }] as unknown as Record<string, unknown>);
    await peer.send({ jsonrpc: "2.0", id: 4, method: "$/ping" });
    const answers = await peer.received(3);
    assert.deepEqual(answers[0], { jsonrpc: "2.0", id: 1, error: { code: -32600, message: 'Invalid Request: member "method" must be a string' } });
    assert.deepEqual(answers[1], { jsonrpc: "2.0", id: null, error: { code: -32600, message: "Invalid Request: batches are not supported" } });
    assert.deepEqual(answers[2], { jsonrpc: "2.0", id: 4, result: {} });
    assert.ok(errors.includes("ProtocolError"), "the invalid response was reported locally");
  } finally {
    await dispose();
  }
});

test("request timeout rejects with RequestTimeout and tells the peer", async () => {
  const { worker, parent, dispose } = await channelPair();
  try {
    const cancelled = new Promise<void>((resolve) => {
      worker.onRequest("never", (_params: unknown, { signal }) => {
        signal.addEventListener("abort", () => resolve());
        return new Promise(() => undefined);
      });
    });
    worker.start();
    parent.start();
    await assert.rejects(parent.request("never", undefined, { timeoutMs: 50 }), (error: unknown) => {
      assert.ok(error instanceof RequestTimeout);
      assert.equal(error.code, ErrorCodes.RequestTimeout);
      return true;
    });
    await cancelled;
  } finally {
    await dispose();
  }
});

test("closing the channel fails pending requests with ChannelClosed; later calls reject at once", async () => {
  const { worker, parent, dispose } = await channelPair();
  try {
    worker.onRequest("never", () => new Promise(() => undefined));
    worker.start();
    parent.start();
    const pending = assert.rejects(parent.request("never"), ChannelClosed);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await parent.close();
    await pending;
    await assert.rejects(parent.request("anything"), ChannelClosed);
    await assert.rejects(parent.notify("anything"), ChannelClosed);
  } finally {
    await dispose();
  }
});

test("unencodable values fail on the sending side and nothing is written", async () => {
  const { worker, parent, dispose } = await channelPair();
  try {
    const seen: unknown[] = [];
    worker.onNotification("note", (params: unknown) => void seen.push(params));
    worker.onRequest("echo", (params: unknown) => params);
    worker.start();
    parent.start();
    await assert.rejects(parent.request("echo", { when: new Date() }), CodecError);
    await assert.rejects(parent.notify("note", [new Map()]), CodecError);
    await assert.rejects(parent.request("echo", "not params"), ProtocolError);
    // The channel is unaffected: the next message is the first the worker sees.
    assert.deepEqual(await parent.request("echo", [1]), [1]);
    await parent.notify("note", ["ok"]);
    await parent.request("echo", []);
    assert.deepEqual(seen, [["ok"]]);
  } finally {
    await dispose();
  }
});

test("a result that cannot be encoded is answered -32603; one over the peer's limit, error or result, -32005 with the same id", async () => {
  const { worker, parent, dispose } = await channelPair({ maxFrameSize: 1024 });
  try {
    worker.onRequest("date", () => new Date(0));
    worker.onRequest("big", () => "x".repeat(2000));
    worker.onRequest("bigError", () => {
      throw new Error("y".repeat(3000));
    });
    worker.onRequest("small", () => "fine");
    worker.start();
    parent.start();
    await assert.rejects(parent.request("date"), (error: unknown) => {
      assert.ok(error instanceof RemoteError);
      assert.equal(error.code, ErrorCodes.InternalError);
      assert.match(error.message, /Date/);
      return true;
    });
    await assert.rejects(parent.request("big"), (error: unknown) => {
      assert.ok(error instanceof RemoteError);
      assert.equal(error.code, ErrorCodes.MessageTooLarge);
      assert.match(error.message, /^response of 20\d\d bytes exceeds max_frame_size of 1024 bytes$/);
      const data = error.data as { size: number; limit: number };
      assert.equal(data.limit, 1024);
      assert.equal(error.message, `response of ${data.size} bytes exceeds max_frame_size of 1024 bytes`);
      return true;
    });
    // An error response over the limit is replaced the same way (D1): the caller is answered.
    await assert.rejects(parent.request("bigError"), (error: unknown) => {
      assert.ok(error instanceof RemoteError);
      assert.equal(error.code, ErrorCodes.MessageTooLarge);
      assert.match(error.message, /^response of \d+ bytes exceeds max_frame_size of 1024 bytes$/);
      return true;
    });
    assert.equal(await parent.request("small"), "fine");
  } finally {
    await dispose();
  }
});

test("an oversized frame is rejected from its header, answered -32005 and the connection closed", async () => {
  const directory = tempDirectory();
  const path = join(directory.path, "o.sock");
  const server = TransportFactory.createPipeServer();
  const errors: IpcError[] = [];
  const closed = new Promise<IpcError | undefined>((resolve) =>
    server.onConnection((transport) => {
      const channel = dataChannel(transport, { maxFrameSize: 1024 });
      channel.onError((error) => errors.push(error));
      channel.onClose((error) => resolve(error));
      channel.start();
    }),
  );
  await server.listen(path);
  const client = await TransportFactory.connectPipe(path);
  const received: Uint8Array[] = [];
  const ended = new Promise<void>((resolve) => client.open({ data: (chunk) => void received.push(chunk), end: resolve, error: () => resolve() }));
  try {
    // Declares 4 GiB - 1 and sends nothing more: the worker must not wait for (or allocate) it.
    await client.write(Uint8Array.of(0xff, 0xff, 0xff, 0xff));
    const reason = await closed;
    await ended;
    assert.equal(reason?.name, "FramingError");
    assert.equal(reason?.message, "frame of 4294967295 bytes exceeds max_frame_size of 1024 bytes");
    assert.equal(errors[0]?.name, "FramingError");
    const decoder = new LengthPrefixedFraming().createDecoder();
    const events = received.flatMap((chunk) => decoder.push(chunk));
    assert.equal(events.length, 1);
    const first = events[0];
    assert.ok(first?.type === "frame");
    const reply = new MessagePackCodec().decode(first.frame) as Record<string, unknown>;
    assert.equal(reply.id, null);
    assert.deepEqual(reply.error, {
      code: ErrorCodes.MessageTooLarge,
      message: "frame of 4294967295 bytes exceeds max_frame_size of 1024 bytes",
      data: { size: 4294967295, limit: 1024 },
    });
  } finally {
    await client.close();
    await server.close();
    directory.remove();
  }
});

test("writes wait for 'drain' when the reader is slow, and frames arrive whole and in order", async () => {
  const directory = tempDirectory();
  const path = join(directory.path, "b.sock");
  // A raw reader we can pause: it does not read until told to.
  const raw = createServer();
  const accepted = new Promise<Socket>((resolve) => raw.once("connection", resolve));
  await new Promise<void>((resolve) => raw.listen(path, resolve));
  const transport = await TransportFactory.connectPipe(path);
  const reader = await accepted;
  reader.pause();
  const channel = dataChannel(transport);
  channel.start();
  try {
    const payload = (n: number) => ({ n, blob: new Uint8Array(256 * 1024).fill(n % 251) });
    let accepted = 0;
    const sends = Array.from({ length: 64 }, (_, n) => channel.notify("chunk", payload(n)).then(() => void accepted++));
    // 64 x 256 KiB = 16 MiB cannot all fit in the socket buffers of a reader that does not read:
    // the writers must be waiting for 'drain' instead of buffering everything.
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(accepted < 64, `all ${accepted} writes completed without the reader reading`);

    const decoder = new LengthPrefixedFraming().createDecoder();
    const codec = new MessagePackCodec();
    const numbers: number[] = [];
    reader.on("data", (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) {
        assert.ok(event.type === "frame", "no framing error: frames never interleave");
        const message = codec.decode(event.frame) as { params: { n: number; blob: Uint8Array } };
        assert.equal(message.params.blob.length, 256 * 1024);
        assert.ok(message.params.blob.every((byte) => byte === message.params.n % 251));
        numbers.push(message.params.n);
      }
    });
    reader.resume();
    await Promise.all(sends);
    while (numbers.length < 64) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(numbers, Array.from({ length: 64 }, (_, n) => n));
  } finally {
    await channel.close();
    reader.destroy();
    await new Promise<void>((resolve) => raw.close(() => resolve()));
    directory.remove();
  }
});

// The outbox's bounds on answers waiting to be written (src/channel/outbox.ts): 256, or 64 MiB.
const answerBounds = [
  { bound: "256 answers", total: 600, answerSize: 64 * 1024, stopsNear: 256 },
  { bound: "64 MiB of answers", total: 200, answerSize: 1024 * 1024, stopsNear: 64 },
];

for (const { bound, total, answerSize, stopsNear } of answerBounds) {
  test(`a peer that sends without reading the answers is stopped at ${bound}: the channel stops reading instead of queueing answers`, async () => {
    const directory = tempDirectory();
    const path = join(directory.path, "s.sock");
    const raw = createServer();
    const accepted = new Promise<Socket>((resolve) => raw.once("connection", resolve));
    await new Promise<void>((resolve) => raw.listen(path, resolve));
    const transport = await TransportFactory.connectPipe(path);
    const peer = await accepted;
    peer.pause(); // the peer writes requests but does not read
    const channel = dataChannel(transport);
    let handled = 0;
    channel.onRequest("big", () => {
      handled++;
      return new Uint8Array(answerSize).fill(handled % 251);
    });
    channel.start();
    try {
      const framing = new LengthPrefixedFraming();
      const codec = new MessagePackCodec();
      // The requests arrive in one go; their answers would be `total` x `answerSize` bytes.
      peer.write(Buffer.concat(Array.from({ length: total }, (_, index) => framing.encode(codec.encode({ jsonrpc: "2.0", id: index + 1, method: "big" })))));
      await new Promise((resolve) => setTimeout(resolve, 300));
      // The bound, and the few answers the socket's buffers took before they filled (1 MiB at most).
      const taken = Math.ceil(1024 * 1024 / answerSize) + 1;
      assert.ok(handled <= stopsNear + taken, `${handled} of ${total} requests were handled while nothing was read: answers piled up`);

      const decoder = framing.createDecoder();
      const ids: number[] = [];
      peer.on("data", (chunk: Buffer) => {
        for (const event of decoder.push(chunk)) {
          assert.ok(event.type === "frame");
          const answer = codec.decode(event.frame) as { id: number; result: Uint8Array };
          assert.equal(answer.result.byteLength, answerSize);
          // Each answer's own bytes: frames reuse memory only once written, never while queued.
          assert.ok(answer.result.every((byte) => byte === answer.id % 251), `answer ${answer.id} holds its own bytes`);
          ids.push(answer.id);
        }
      });
      peer.resume();
      for (let waited = 0; ids.length < total && waited < 30_000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.deepEqual(ids, Array.from({ length: total }, (_, index) => index + 1), "every request answered once, in order");
      assert.equal(handled, total);
    } finally {
      await channel.close();
      peer.destroy();
      await new Promise<void>((resolve) => raw.close(() => resolve()));
      directory.remove();
    }
  });
}

test("a batch of requests read at once gets every answer, whole and once: sync, async and thenable handlers", async () => {
  const { worker, peer, dispose } = await channelWithRawPeer();
  try {
    worker.onRequest("sync", ([n]: [number]) => n * 2);
    worker.onRequest("async", async ([n]: [number]) => n * 3);
    // A thenable that is not a Promise, as `await` would accept.
    worker.onRequest("thenable", ([n]: [number]): unknown => ({ then: (resolve: (value: number) => void) => resolve(n * 5) }));
    worker.onRequest("throws", () => {
      throw new TypeError("sync failure");
    });
    worker.start();
    const methods = ["sync", "async", "thenable", "throws"] as const;
    const batch = Array.from({ length: 600 }, (_, index) => ({ jsonrpc: "2.0", id: index, method: methods[index % 4] as (typeof methods)[number], params: [index] }));
    await peer.sendAll(batch);
    const answers = await peer.received(batch.length);
    assert.equal(answers.length, batch.length);
    const byId = new Map(answers.map((answer) => [answer.id as number, answer]));
    assert.equal(byId.size, batch.length, "one answer per request");
    for (const { id, method } of batch) {
      const answer = byId.get(id);
      if (method === "throws") {
        const { traceback, ...data } = (answer?.error as { data: { traceback: string } }).data;
        assert.match(traceback, /^TypeError: sync failure\n/);
        assert.deepEqual({ ...answer, error: { ...(answer?.error as object), data } }, { jsonrpc: "2.0", id, error: { code: ErrorCodes.HandlerError, message: "sync failure", data: { type: "TypeError" } } });
      } else {
        assert.deepEqual(answer, { jsonrpc: "2.0", id, result: id * { sync: 2, async: 3, thenable: 5 }[method] });
      }
    }
    const syncIds = answers.filter((answer) => answer.id as number % 4 === 0).map((answer) => answer.id);
    assert.deepEqual(syncIds, [...syncIds].sort((a, b) => (a as number) - (b as number)), "synchronous answers leave in request order");
  } finally {
    await dispose();
  }
});

test("a handler that looks at its signal only after $/cancelRequest arrived finds it aborted", async () => {
  const { worker, peer, dispose } = await channelWithRawPeer();
  try {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let cancelled = false;
    worker.onRequest("late", async (_params: unknown, context) => {
      await gate;
      return { aborted: context.signal.aborted, reason: (context.signal.reason as Error).name, id: context.id, method: context.method };
    });
    worker.onNotification("done", () => {
      cancelled = true;
      release();
    });
    worker.start();
    await peer.send({ jsonrpc: "2.0", id: 7, method: "late" });
    await peer.send({ jsonrpc: "2.0", method: "$/cancelRequest", params: { id: 7 } });
    await peer.send({ jsonrpc: "2.0", method: "done" });
    const [answer] = await peer.received(1);
    assert.ok(cancelled);
    assert.deepEqual(answer, { jsonrpc: "2.0", id: 7, result: { aborted: true, reason: "RequestCancelled", id: 7, method: "late" } });
  } finally {
    await dispose();
  }
});
