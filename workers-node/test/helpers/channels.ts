/**
 * Two channels connected by a real Unix socket, for channel tests in one process.
 */
import { join } from "node:path";

import {
  ChannelBuilder,
  JsonRpcProtocol,
  LengthPrefixedFraming,
  MessagePackCodec,
  TransportFactory,
  type Channel,
  type Transport,
} from "@aspect-ipc/worker";

import { tempDirectory } from "./parent.js";

const MiB = 1024 * 1024;

/** A listening server and a client transport connected to it. */
export async function socketPair(): Promise<{ server: Transport; client: Transport; dispose(): Promise<void> }> {
  const directory = tempDirectory();
  const path = join(directory.path, "c.sock");
  const pipeServer = TransportFactory.createPipeServer();
  const accepted = new Promise<Transport>((resolve) => pipeServer.onConnection((transport) => resolve(transport)));
  await pipeServer.listen(path);
  const client = await TransportFactory.connectPipe(path);
  const server = await accepted;
  return {
    server,
    client,
    dispose: async () => {
      await Promise.all([server.close(), client.close()]);
      await pipeServer.close();
      directory.remove();
    },
  };
}

/** A data-channel-style channel over `transport`. */
export function dataChannel(transport: Transport, options: { maxFrameSize?: number; name?: string } = {}): Channel {
  return new ChannelBuilder()
    .withTransport(transport)
    .withFraming(new LengthPrefixedFraming(options.maxFrameSize === undefined ? {} : { maxFrameSize: options.maxFrameSize }))
    .withCodec(new MessagePackCodec())
    .withProtocol(new JsonRpcProtocol())
    .withName(options.name ?? "data")
    .build();
}

/**
 * What a deaf peer's channel has sent before the test goes on: nothing; one 1 MiB notification,
 * which fills the socket (frames sent next wait in the outbox, which still has room); or two,
 * the second waiting in the outbox, past its room (a request or notification sent next waits
 * for room before it is encoded).
 */
export type DeafPeerFill = "nothing" | "socket" | "outbox";

/**
 * A started data channel whose peer reads nothing yet: the peer's end of the socket, `peer`, is
 * not opened (a test may open it later, and read). The channel is closed and the socket removed
 * when `t` ends.
 */
export async function channelToDeafPeer(t: { after(fn: () => Promise<void>): void }, fill: DeafPeerFill = "outbox"): Promise<{ channel: Channel; peer: Transport }> {
  const pair = await socketPair();
  const channel = dataChannel(pair.server);
  channel.start();
  t.after(async () => {
    await channel.close();
    await pair.dispose();
  });
  const count = fill === "outbox" ? 2 : fill === "socket" ? 1 : 0;
  for (let i = 0; i < count; i++) channel.notify("n", { data: new Uint8Array(MiB) }).catch(() => undefined);
  // Past the outbox's room: given the time to get there (the socket takes what it can first).
  if (fill === "outbox") await new Promise((resolve) => setTimeout(resolve, 50));
  return { channel, peer: pair.client };
}

/** Two started channels talking to each other over a real socket. */
export async function channelPair(options: { maxFrameSize?: number } = {}): Promise<{
  worker: Channel;
  parent: Channel;
  dispose(): Promise<void>;
}> {
  const pair = await socketPair();
  const worker = dataChannel(pair.server, { ...options, name: "worker" });
  const parent = dataChannel(pair.client, { ...options, name: "parent" });
  return {
    worker,
    parent,
    dispose: async () => {
      await Promise.all([worker.close(), parent.close()]);
      await pair.dispose();
    },
  };
}

/** The parent's raw end of a connection: sends frames it builds itself and records what comes back. */
export interface RawPeer {
  send(message: Record<string, unknown>): Promise<void>;
  /** Sends several messages in a single write (so that they arrive together). */
  sendAll(messages: Array<Record<string, unknown>>): Promise<void>;
  /** Waits until `count` messages arrived and returns them all. */
  received(count: number): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

/** A worker-side channel (not started) with a raw peer connected to it. */
export async function channelWithRawPeer(): Promise<{ worker: Channel; peer: RawPeer; dispose(): Promise<void> }> {
  const pair = await socketPair();
  const worker = dataChannel(pair.server);
  const framing = new LengthPrefixedFraming();
  const codec = new MessagePackCodec();
  const decoder = framing.createDecoder();
  const messages: Array<Record<string, unknown>> = [];
  pair.client.open({
    data: (chunk) => {
      for (const event of decoder.push(chunk)) {
        if (event.type === "frame") messages.push(codec.decode(event.frame) as Record<string, unknown>);
      }
    },
    end: () => undefined,
    error: () => undefined,
  });
  const peer: RawPeer = {
    send: (message) => pair.client.write(framing.encode(codec.encode(message))),
    sendAll: (batch) => pair.client.write(Buffer.concat(batch.map((message) => framing.encode(codec.encode(message))))),
    received: async (count) => {
      for (let waited = 0; messages.length < count; waited += 10) {
        if (waited > 10_000) throw new Error(`timed out waiting for ${count} messages, got ${JSON.stringify(messages)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return messages.slice();
    },
    close: () => pair.client.close(),
  };
  return {
    worker,
    peer,
    dispose: async () => {
      await worker.close();
      await pair.dispose();
    },
  };
}
