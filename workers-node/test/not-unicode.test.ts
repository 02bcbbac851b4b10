/**
 * Text that is not Unicode (PROTOCOL.md 4.10): a handler's failure whose message, type name or
 * stack holds a lone UTF-16 surrogate is answered with U+FFFD in its place, on both channels; a
 * typed error keeps its code and data (its message made Unicode too); an error response that still
 * cannot be encoded (a typed error's `data`) is answered -32603 with the same id (4.9), never
 * left unanswered.
 */
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";

import {
  ChannelBuilder,
  ErrorCodes,
  JsonCodec,
  JsonRpcProtocol,
  LineDelimitedFraming,
  RemoteError,
  type Channel,
  type Transport,
} from "@aspect-ipc/worker";

import { dataChannel, socketPair } from "./helpers/channels.js";
import { connectedWorker, type WorkerProcess } from "./helpers/parent.js";

/** Half of an emoji's surrogate pair: a lone high surrogate, which no codec sends (PROTOCOL.md 3.4). */
const LONE = "😀".slice(0, 1);

async function answering(t: TestContext): Promise<{ worker: WorkerProcess; answer: (method: string, params: unknown) => Promise<unknown[]> }> {
  const { worker, parent } = await connectedWorker(t);
  // The error member of the answer on control, then on data.
  const answer = async (method: string, params: unknown): Promise<unknown[]> => [
    (await worker.request(method, params)).error,
    (await parent.request(method, params)).error,
  ];
  return { worker, answer };
}

test("a failure whose message is not Unicode is answered -32000 with U+FFFD, its type and its stack, on both channels", async (t) => {
  const { answer } = await answering(t);
  for (const error of await answer("fail", { message: "bad", notUnicode: true })) {
    const { code, message, data } = error as { code: number; message: string; data: { type: string; traceback: string } };
    assert.deepEqual([code, message, data.type], [ErrorCodes.HandlerError, "bad \uFFFD", "Error"]);
    assert.match(data.traceback, /^Error: bad \uFFFD\n {4}at /);
  }
});

test("a typed error whose message is not Unicode keeps its code and data, with U+FFFD in its message, on both channels", async (t) => {
  const { answer } = await answering(t);
  for (const error of await answer("fail", { message: "bad", code: 4001, data: { why: [1] }, notUnicode: true })) {
    assert.deepEqual(error, { code: 4001, message: "bad \uFFFD", data: { why: [1] } });
  }
});

/** A control-channel-style channel (JSON lines) over `transport`. */
function jsonChannel(transport: Transport, name: string): Channel {
  return new ChannelBuilder()
    .withTransport(transport)
    .withFraming(new LineDelimitedFraming())
    .withCodec(new JsonCodec())
    .withProtocol(new JsonRpcProtocol())
    .withName(name)
    .build();
}

const CODECS = [
  { codec: "JSON lines", make: jsonChannel },
  { codec: "MessagePack", make: (transport: Transport, name: string) => dataChannel(transport, { name }) },
];

for (const { codec, make } of CODECS) {
  test(`${codec}: text not Unicode anywhere in a handler's failure is made Unicode; a typed error's data that cannot be encoded is answered -32603`, async (t) => {
    const pair = await socketPair();
    const worker = make(pair.server, "worker");
    const parent = make(pair.client, "parent");
    t.after(async () => {
      await Promise.all([worker.close(), parent.close()]);
      await pair.dispose();
    });
    class Odd extends Error {}
    Object.defineProperty(Odd, "name", { value: `Odd${LONE}` }); // the type name, as data.type
    worker.onRequest("oddType", () => {
      throw new Odd("odd");
    });
    worker.onRequest("thrownString", () => {
      throw `bad ${LONE}`;
    });
    worker.onRequest("typedData", () => {
      throw new RemoteError(4001, "typed", { why: `bad ${LONE}` });
    });
    worker.onRequest("typedBigint", () => {
      throw new RemoteError(4002, "typed", 2n ** 64n); // beyond the wire's integers (3.2)
    });
    worker.start();
    parent.start();
    // Unanswered, a request would end in RequestTimeout: each must be answered.
    const options = { timeoutMs: 5000 };
    await assert.rejects(parent.request("oddType", undefined, options), (error: unknown) => {
      assert.ok(error instanceof RemoteError);
      assert.equal(error.code, ErrorCodes.HandlerError);
      assert.equal((error.data as { type: string }).type, "Odd\uFFFD");
      return true;
    });
    await assert.rejects(parent.request("thrownString", undefined, options), {
      code: ErrorCodes.HandlerError,
      message: "bad \uFFFD",
      data: { type: "string" },
    });
    // A typed error's data is the handler's own: never rewritten, so not sent; the answer is -32603.
    for (const [method, code] of [["typedData", 4001], ["typedBigint", 4002]] as const) {
      await assert.rejects(parent.request(method, undefined, options), (error: unknown) => {
        assert.ok(error instanceof RemoteError, String(error));
        assert.equal(error.code, ErrorCodes.InternalError);
        assert.match(error.message, new RegExp(`^error response \\(code ${code}\\) cannot be sent: .*\\$\\.error\\.data`));
        return true;
      });
    }
  });
}
