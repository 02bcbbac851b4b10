/**
 * The write queue is bounded in total (PROTOCOL.md 2.6, 4.5): a request or notification waits for
 * room before it is encoded, its timeout and signal counting from the call; one that finds no room
 * in time is never sent and says so, and so is one given up while its frame still waits in the
 * queue. Large binaries go out as parts, written in order, whole.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import {
  ChannelBuilder,
  ChannelClosed,
  JsonRpcProtocol,
  LengthPrefixedFraming,
  MessagePackCodec,
  RequestCancelled,
  RequestTimeout,
  type Transport,
  type TransportSink,
} from "@aspect-ipc/worker";

import { channelToDeafPeer, dataChannel, socketPair } from "./helpers/channels.js";

const MiB = 1024 * 1024;

/** What the raw peer reads, as far as these tests look. */
type Message = { method?: string; id?: number; params?: { id?: number } };

test("a request that finds no room within its timeout is never sent, and says so", async (t) => {
  // The peer never reads; the outbox is past its room.
  const { channel } = await channelToDeafPeer(t);
  let encoded = false;
  const params = {
    get data(): string {
      encoded = true;
      return "x";
    },
  };
  const started = Date.now();
  await assert.rejects(channel.request("m", params, { timeoutMs: 200 }), (error: unknown) => {
    assert.ok(error instanceof RequestTimeout);
    assert.match(error.message, /^request m was not sent within 200 ms: the peer read none of the \d+ bytes queued before it$/);
    return true;
  });
  assert.ok(Date.now() - started >= 190);
  assert.equal(encoded, false, "its params were never encoded");
});

/**
 * A channel whose peer has not read yet. With `filled`, one 1 MiB notification fills the transport,
 * so the next frames wait in the outbox (which still has room: the next request is encoded at once).
 * `read()` starts the peer reading and resolves with the messages it got, up to a last notification `end`.
 */
async function channelToLatePeer(t: { after(fn: () => Promise<void>): void }, filled = true) {
  const { channel, peer } = await channelToDeafPeer(t, filled ? "socket" : "nothing");
  const read = async (): Promise<Message[]> => {
    const framing = new LengthPrefixedFraming();
    const codec = new MessagePackCodec();
    const decoder = framing.createDecoder();
    const messages: Message[] = [];
    const ended = new Promise<void>((resolve) => {
      peer.open({
        data: (chunk) => {
          for (const event of decoder.push(chunk)) {
            assert.ok(event.type === "frame", "frames arrive whole");
            const message = codec.decode(event.frame) as Message;
            messages.push(message);
            if (message.method === "end") resolve();
          }
        },
        end: () => undefined,
        error: () => undefined,
      });
    });
    await channel.notify("end");
    await ended;
    return messages;
  };
  return { channel, read };
}

test("a request that times out while its frame still waits in the queue is taken back: never written, and it says so", async (t) => {
  const { channel, read } = await channelToLatePeer(t);
  await assert.rejects(channel.request("m", { small: true }, { timeoutMs: 100 }), (error: unknown) => {
    assert.ok(error instanceof RequestTimeout);
    const queued = /^request m was not sent within 100 ms: the peer read none of the (\d+) bytes queued before it$/.exec(error.message);
    assert.ok(queued !== null, error.message);
    assert.ok(Number(queued[1]) > 0, "the bytes of the notification still in the transport count");
    return true;
  });
  // Written later anyway, it would arrive after the notification, with its $/cancelRequest.
  assert.deepEqual((await read()).map((message) => message.method), ["n", "end"]);
});

test("a request whose signal aborts while its frame still waits in the queue is taken back: never written", async (t) => {
  const { channel, read } = await channelToLatePeer(t);
  const controller = new AbortController();
  const request = channel.request("m", {}, { signal: controller.signal });
  controller.abort();
  await assert.rejects(request, (error: unknown) => {
    assert.ok(error instanceof RequestCancelled);
    assert.equal(error.message, "request m cancelled by the caller before it was sent");
    return true;
  });
  assert.deepEqual((await read()).map((message) => message.method), ["n", "end"]);
});

test("a request that times out once the transport took its frame stays sent: $/cancelRequest follows, and it says so", async (t) => {
  // Nothing waits before it: its 1 MiB go to the transport at once, and fill it.
  const { channel, read } = await channelToLatePeer(t, false);
  const outcome = await channel.request("m", { data: new Uint8Array(MiB) }, { timeoutMs: 100 }).catch((error: unknown) => error);
  assert.ok(outcome instanceof RequestTimeout);
  assert.equal(outcome.message, "request m timed out after 100 ms: it was sent, and the peer was sent $/cancelRequest");
  const messages = await read();
  assert.deepEqual(messages.map((message) => message.method), ["m", "$/cancelRequest", "end"]);
  assert.equal(messages[1]?.params?.id, messages[0]?.id);
});

test("a request waiting for room is cancelled by its signal, and by the channel closing", async (t) => {
  const { channel } = await channelToDeafPeer(t);
  const controller = new AbortController();
  const cancelled = channel.request("m", {}, { signal: controller.signal });
  const notification = channel.notify("n", {});
  const closing = channel.request("m2", {});
  await sleep(20);
  controller.abort();
  await assert.rejects(cancelled, (error: unknown) => error instanceof RequestCancelled && /cancelled by the caller before it was sent/.test(error.message));
  void channel.close();
  await assert.rejects(notification, ChannelClosed);
  await assert.rejects(closing, ChannelClosed);
});

test("a transport of the program's own gets a frame with a large binary whole, in one write", async () => {
  const chunks: Uint8Array[] = [];
  const transport: Transport = {
    closed: false,
    open: (_sink: TransportSink) => undefined,
    write: (chunk) => {
      chunks.push(chunk);
      return Promise.resolve();
    },
    flush: () => Promise.resolve(),
    pause: () => undefined,
    resume: () => undefined,
    close: () => Promise.resolve(),
  };
  const framing = new LengthPrefixedFraming();
  const codec = new MessagePackCodec();
  const channel = new ChannelBuilder().withTransport(transport).withFraming(framing).withCodec(codec).withProtocol(new JsonRpcProtocol()).build();
  channel.start();
  const data = new Uint8Array(200_000).fill(4);
  await channel.notify("big", { data });
  assert.equal(chunks.length, 1);
  const [event] = framing.createDecoder().push(chunks[0] as Uint8Array);
  assert.ok(event?.type === "frame");
  assert.deepEqual(codec.decode(event.frame), { jsonrpc: "2.0", method: "big", params: { data } });
});

test("over a real socket, frames with large binaries arrive whole and in order among small ones", async (t) => {
  const pair = await socketPair();
  const sender = dataChannel(pair.server);
  const receiver = dataChannel(pair.client);
  t.after(async () => {
    await Promise.all([sender.close(), receiver.close()]);
    await pair.dispose();
  });
  const received: unknown[] = [];
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  receiver.onNotification("n", (params: { i: number; data?: Uint8Array }) => {
    received.push(params.data === undefined ? params.i : [params.i, params.data.byteLength, params.data[0], params.data.at(-1)]);
    if (params.i === 29) done();
  });
  sender.start();
  receiver.start();
  const sends: Array<Promise<void>> = [];
  for (let i = 0; i < 30; i++) {
    sends.push(i % 3 === 0 ? sender.notify("n", { i, data: new Uint8Array(300_000 + i).fill(i) }) : sender.notify("n", { i }));
  }
  await Promise.all(sends);
  await all;
  assert.deepEqual(
    received,
    Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? [i, 300_000 + i, i, i] : i)),
  );
});
