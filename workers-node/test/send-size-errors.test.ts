/**
 * A request or notification over the peer's limit is never sent; the caller's error says what it
 * was, on which limit, and what to do (PROTOCOL.md 4.9, 12.1): `request of N bytes exceeds
 * max_frame_size of M bytes: ...`, `notification of N bytes exceeds max_line_length of M bytes: ...`.
 * Responses are 4.9's `-32005`, tested in channel.test.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ChannelBuilder,
  FramingError,
  JsonCodec,
  JsonRpcProtocol,
  LengthPrefixedFraming,
  LineDelimitedFraming,
  MessagePackCodec,
  type Channel,
  type Codec,
  type Framing,
} from "@aspect-ipc/worker";

import { socketPair } from "./helpers/channels.js";

const LIMIT = 1024;

interface Setup {
  readonly channel: "control" | "data";
  readonly framing: () => Framing;
  readonly codec: Codec;
  readonly kind: "line_too_long" | "frame_too_large";
  readonly words: string;
}

const SETUPS: Setup[] = [
  {
    channel: "control",
    framing: () => new LineDelimitedFraming({ maxLineLength: LIMIT }),
    codec: new JsonCodec(),
    kind: "line_too_long",
    words: `exceeds max_line_length of ${LIMIT} bytes: raise max_line_length or use the data channel`,
  },
  {
    channel: "data",
    framing: () => new LengthPrefixedFraming({ maxFrameSize: LIMIT }),
    codec: new MessagePackCodec(),
    kind: "frame_too_large",
    words: `exceeds max_frame_size of ${LIMIT} bytes: raise max_frame_size or split the payload`,
  },
];

function build(setup: Setup, transport: Parameters<ChannelBuilder["withTransport"]>[0], name: string): Channel {
  return new ChannelBuilder().withTransport(transport).withFraming(setup.framing()).withCodec(setup.codec).withProtocol(new JsonRpcProtocol()).withName(name).build();
}

for (const setup of SETUPS) {
  test(`${setup.channel}: a request or notification over the limit is refused, named as what it is`, async () => {
    const pair = await socketPair();
    const worker = build(setup, pair.server, "worker");
    const parent = build(setup, pair.client, "parent");
    const seen: string[] = [];
    parent.onRequest("m", (params: unknown[]) => {
      seen.push("request");
      return (params[0] as string).length;
    });
    parent.onNotification("m", () => void seen.push("notification"));
    worker.start();
    parent.start();
    try {
      const params = ["x".repeat(2 * LIMIT)];
      const protocol = new JsonRpcProtocol();
      const expect = (what: string, message: unknown) => {
        const size = setup.codec.encode(message).byteLength;
        return (error: unknown): boolean => {
          assert.ok(error instanceof FramingError, String(error));
          // Class, kind and numbers as before; only the words changed.
          assert.equal(error.kind, setup.kind);
          assert.equal(error.size, size);
          assert.equal(error.limit, LIMIT);
          assert.equal(error.message, `${what} of ${size} bytes ${setup.words}`);
          return true;
        };
      };
      await assert.rejects(worker.request("m", params), expect("request", protocol.request(1, "m", params)));
      await assert.rejects(worker.notify("m", params), expect("notification", protocol.notification("m", params)));
      // Nothing was sent, and the channel goes on.
      assert.equal(await worker.request("m", ["small"]), 5);
      assert.deepEqual(seen, ["request"]);
    } finally {
      await Promise.all([worker.close(), parent.close()]);
      await pair.dispose();
    }
  });
}
