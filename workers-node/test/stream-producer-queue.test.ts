/**
 * A stream's producer queues its items while it has credit (PROTOCOL.md 13.3): it hands them to the
 * channel's writer without waiting for each write, never more than its credit, and waits for a
 * full transport to drain; order is kept throughout (13.4). A scripted transport shows what reached
 * it and when; a real socket shows the same under real backpressure.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setImmediate as turn } from "node:timers/promises";

import {
  ChannelBuilder,
  JsonRpcProtocol,
  LengthPrefixedFraming,
  MessagePackCodec,
  type Channel,
  type Transport,
  type TransportSink,
} from "@aspect-ipc/worker";

import { channelPair } from "./helpers/channels.js";

type Message = Record<string, unknown>;

const framing = new LengthPrefixedFraming();
const codec = new MessagePackCodec();

/**
 * A transport that records the frames handed to it and never completes a write by itself: a
 * write's callback (`onWritten`) runs only on `complete()`. `roomFor` frames fit before it says
 * it is full; `drain()` makes room again.
 */
class ScriptedTransport implements Transport {
  readonly frames: Message[] = [];
  readonly pendingCallbacks: Array<(() => void) | undefined> = [];
  roomFor = Number.POSITIVE_INFINITY;
  private sink: TransportSink | null = null;
  private drained: (() => void) | null = null;
  private isClosed = false;

  get closed(): boolean {
    return this.isClosed;
  }

  open(sink: TransportSink): void {
    this.sink = sink;
  }

  /** A message from the peer. */
  receive(message: Message): void {
    this.sink?.data(framing.encode(codec.encode(message)));
  }

  writeNow(chunk: Uint8Array, onWritten?: () => void): boolean {
    const decoder = framing.createDecoder();
    for (const event of decoder.push(chunk)) {
      if (event.type === "frame") this.frames.push(codec.decode(event.frame) as Message);
    }
    this.pendingCallbacks.push(onWritten);
    return this.frames.length < this.roomFor;
  }

  whenDrained(): Promise<void> {
    return new Promise((resolve) => (this.drained = resolve));
  }

  /** Room for `more` frames, and 'drain'. */
  drain(more: number): void {
    this.roomFor = this.frames.length + more;
    const drained = this.drained;
    this.drained = null;
    drained?.();
  }

  write(chunk: Uint8Array): Promise<void> {
    return this.writeNow(chunk) ? Promise.resolve() : this.whenDrained();
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  pause(): void {}
  resume(): void {}

  close(): Promise<void> {
    this.isClosed = true;
    return Promise.resolve();
  }
}

function scriptedChannel(transport: ScriptedTransport): Channel {
  return new ChannelBuilder().withTransport(transport).withFraming(framing).withCodec(codec).withProtocol(new JsonRpcProtocol()).withName("data").build();
}

const openOut = (id: number, method: string, window: number, params: Message = {}): Message => ({
  jsonrpc: "2.0",
  id,
  method,
  params: { ...params, "$/stream": { out: { window } } },
});

const seqs = (frames: Message[]): unknown[] => frames.filter((frame) => frame.method === "$/stream/item").map((frame) => (frame.params as Message).seq);

async function turns(count: number): Promise<void> {
  for (let index = 0; index < count; index++) await turn();
}

test("a producer with credit 16 hands 16 items to the writer before any write completed, and never more than its credit", async (t) => {
  const transport = new ScriptedTransport();
  const channel = scriptedChannel(transport);
  t.after(() => channel.close());
  let produced = 0;
  channel.onRequest("count", async function* () {
    for (let index = 0; index < 100; index++) {
      produced++;
      yield index;
    }
    return "done";
  });
  channel.start();
  transport.receive(openOut(1, "count", 16));
  await turns(5);
  assert.deepEqual(seqs(transport.frames), [...Array(16).keys()], "the window's 16 items, in order");
  assert.equal(transport.frames.length, 16, "nothing beyond the credit");
  assert.ok(produced <= 17, `the generator waits for credit (it produced ${produced})`);
  assert.equal(transport.pendingCallbacks.length, 16, "no write completed: the producer did not wait for them");

  transport.receive({ jsonrpc: "2.0", method: "$/stream/credit", params: { stream: 1, dir: "out", add: 8 } });
  await turns(5);
  assert.deepEqual(seqs(transport.frames), [...Array(24).keys()], "8 more with 8 more credit");
  assert.equal(transport.frames.length, 24);
});

test("a full transport stops the producer until it drains; the items and the answer keep their order", async (t) => {
  const transport = new ScriptedTransport();
  transport.roomFor = 4; // the 4th frame takes it over its limit
  const channel = scriptedChannel(transport);
  t.after(() => channel.close());
  let produced = 0;
  channel.onRequest("count", async function* () {
    for (let index = 0; index < 16; index++) {
      produced++;
      yield index;
    }
    return { count: 16 };
  });
  channel.start();
  transport.receive(openOut(1, "count", 16));
  await turns(5);
  assert.equal(transport.frames.length, 4, "nothing is handed to a full transport");
  assert.ok(produced <= 5, `the producer waits for the drain (it produced ${produced} items)`);

  transport.drain(3);
  await turns(5);
  assert.equal(transport.frames.length, 7, "3 more once it had room for 3");

  transport.drain(Number.POSITIVE_INFINITY);
  await turns(10);
  assert.deepEqual(seqs(transport.frames), [...Array(16).keys()]);
  const last = transport.frames.at(-1) as Message;
  assert.deepEqual(last.result, { count: 16 }, "the answer comes after every item (13.4)");
  assert.equal(transport.frames.length, 17);
});

test("over a real socket, a large window of large items keeps its order through a consumer that reads late", async (t) => {
  const { worker, parent, dispose } = await channelPair();
  t.after(dispose);
  const size = 32 * 1024;
  const count = 200;
  worker.onRequest("blocks", async function* () {
    for (let index = 0; index < count; index++) yield new Uint8Array(size).fill(index % 251);
    return { count };
  });
  worker.start();
  parent.start();
  // A window of 128 items of 32 KiB (4 MiB) is far more than the socket holds: the writer fills up.
  const call = parent.stream("blocks", {}, { window: 128 });
  let index = 0;
  for await (const item of call) {
    if (index === 0) await new Promise((resolve) => setTimeout(resolve, 100)); // the socket fills meanwhile
    const bytes = item as Uint8Array;
    assert.equal(bytes.byteLength, size);
    assert.equal(bytes[0], index % 251, `item ${index} out of order`);
    assert.equal(bytes[size - 1], index % 251);
    index++;
  }
  assert.equal(index, count);
  assert.deepEqual(call.result, { count });
});

test("a transport with only write() (a program's own) still gets one frame at a time, in order", async (t) => {
  const frames: Message[] = [];
  let inFlight = 0;
  let mostInFlight = 0;
  let sink: TransportSink | null = null;
  const transport: Transport = {
    closed: false,
    open: (given) => (sink = given),
    write: (chunk) => {
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
      for (const event of framing.createDecoder().push(chunk)) if (event.type === "frame") frames.push(codec.decode(event.frame) as Message);
      return turn().then(() => void inFlight--);
    },
    flush: () => Promise.resolve(),
    pause: () => undefined,
    resume: () => undefined,
    close: () => Promise.resolve(),
  };
  const channel = new ChannelBuilder().withTransport(transport).withFraming(framing).withCodec(codec).withProtocol(new JsonRpcProtocol()).withName("data").build();
  t.after(() => channel.close());
  channel.onRequest("echo", (params: unknown) => params);
  channel.onRequest("count", async function* () {
    yield "a";
    yield "b";
    return "done";
  });
  channel.start();
  const requests = [openOut(1, "count", 4), { jsonrpc: "2.0", id: 2, method: "echo", params: [1] }, { jsonrpc: "2.0", id: 3, method: "echo", params: [2] }];
  (sink as TransportSink | null)?.data(Buffer.concat(requests.map((message) => framing.encode(codec.encode(message)))));
  await turns(20);
  assert.equal(mostInFlight, 1, "each write waited for the one before");
  const stream = frames.filter((frame) => frame.id === 1 || frame.method === "$/stream/item");
  assert.deepEqual(
    stream.map((frame) => (frame.method === undefined ? frame.result : (frame.params as Message).value)),
    ["a", "b", "done"],
    "the items, then the answer (13.4)",
  );
  assert.deepEqual(
    frames.filter((frame) => frame.id === 2 || frame.id === 3).map((frame) => frame.result),
    [[1], [2]],
  );
});
