/**
 * Every optional member of the option types given as an explicit `undefined` counts as absent.
 *
 * A program compiled with `exactOptionalPropertyTypes` that passes an optional value of its own on
 * (`{ timeoutMs: options.timeoutMs, signal: options.signal }`) gives `undefined` for what it does not
 * have: the types must accept that (`prop?: T | undefined`), and the SDK must then behave as if the
 * member were not there. This file is compiled with `exactOptionalPropertyTypes` on
 * (tsconfig.test.json), against the package's own declarations: each object literal below is the
 * type-level test (it fails to compile when a member does not accept `undefined`); the assertions
 * are the run-time one. test/package-types.test.ts compiles a user's project with the same setting.
 */
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import {
  Channel,
  CodecError,
  FramingError,
  JsonCodec,
  JsonRpcProtocol,
  LengthPrefixedFraming,
  LineDelimitedFraming,
  MessagePackCodec,
  PipePath,
  TransportFactory,
  type ChannelParts,
  type ClassifyOptions,
  type CodecOptions,
  type ForModuleOptions,
  type HandlerErrorPolicy,
  type LengthPrefixedFramingOptions,
  type LineDelimitedFramingOptions,
  type PipeServerOptions,
  type RequestHandlerOptions,
  type RequestOptions,
  type StreamOptions,
} from "@aspect-ipc/worker";

import { channelPair, socketPair } from "./helpers/channels.js";
import { WorkerProcess, fixture, tempDirectory } from "./helpers/parent.js";

test("request(), stream() and onRequest() with every option undefined: as without options", async (t) => {
  const { worker, parent, dispose } = await channelPair();
  t.after(dispose);
  const handlerOptions: RequestHandlerOptions = { inputWindow: undefined };
  worker.onRequest("add", ({ a, b }: { a: number; b: number }) => a + b, handlerOptions);
  worker.onRequest(
    "countTo",
    async function* ({ n }: { n: number }) {
      for (let i = 0; i < n; i++) yield i;
      return { count: n };
    },
    handlerOptions,
  );
  worker.start();
  parent.start();

  const requestOptions: RequestOptions = { signal: undefined, timeoutMs: undefined, input: undefined };
  assert.equal(await parent.request("add", { a: 2, b: 3 }, requestOptions), 5);

  // window undefined: the default window (16), not "no output stream".
  const streamOptions: StreamOptions = { window: undefined, signal: undefined, timeoutMs: undefined, input: undefined };
  const call = parent.stream("countTo", { n: 40 }, streamOptions);
  const items: unknown[] = [];
  for await (const item of call) items.push(item);
  assert.deepEqual(items, Array.from({ length: 40 }, (_, i) => i));
  assert.deepEqual(call.result, { count: 40 });
});

/** A channel built from `parts` (its transport one end of a socket) and a plain peer at the other end, both started. */
async function channelFromParts(t: { after(fn: () => Promise<void>): void }, parts: Omit<ChannelParts, "transport" | "framing" | "codec" | "protocol">) {
  const pair = await socketPair();
  const plain = { framing: new LengthPrefixedFraming(), codec: new MessagePackCodec(), protocol: new JsonRpcProtocol() };
  const channel = new Channel({ transport: pair.server, ...plain, ...parts });
  const peer = new Channel({ transport: pair.client, ...plain });
  t.after(async () => {
    await Promise.all([channel.close(), peer.close()]);
    await pair.dispose();
  });
  channel.onRequest("fail", () => {
    throw new TypeError("no");
  });
  channel.start();
  peer.start();
  const failure = await peer.request("fail").then(
    () => assert.fail("the request should fail"),
    (error: unknown) => error as { code: number; data: { type: string; traceback?: string } },
  );
  return { channel, failure };
}

test("a Channel built from parts with name and handlerErrors undefined takes their defaults", async (t) => {
  const { channel, failure } = await channelFromParts(t, { name: undefined, handlerErrors: undefined });
  assert.equal(channel.name, "channel");
  // The default policy: -32000 with the stack (data.traceback).
  assert.equal(failure.code, -32000);
  assert.equal(failure.data.type, "TypeError");
  assert.equal(typeof failure.data.traceback, "string");
});

test("a handler error policy whose onFailure is undefined reports nothing and still answers", async (t) => {
  const policy: HandlerErrorPolicy = { sendTraceback: false, onFailure: undefined };
  const { failure } = await channelFromParts(t, { handlerErrors: policy });
  assert.equal(failure.code, -32000);
  assert.deepEqual(failure.data, { type: "TypeError" });
});

test("framings, codecs, paths, the pipe server, classify() and the errors: undefined is absent", async (t) => {
  const lineOptions: LineDelimitedFramingOptions = { maxLineLength: undefined };
  assert.equal(new LineDelimitedFraming(lineOptions).maxLineLength, new LineDelimitedFraming().maxLineLength);
  const frameOptions: LengthPrefixedFramingOptions = { maxFrameSize: undefined };
  assert.equal(new LengthPrefixedFraming(frameOptions).maxFrameSize, new LengthPrefixedFraming().maxFrameSize);

  const codecOptions: CodecOptions = { encodeHook: undefined, decodeHook: undefined };
  for (const codec of [new JsonCodec(codecOptions), new MessagePackCodec(codecOptions)]) {
    assert.deepEqual(codec.decode(codec.encode({ a: [1, "b"] })), { a: [1, "b"] });
    assert.throws(() => codec.encode(new Date(0)), CodecError, `${codec.name}: no hook, the Date is refused`);
  }

  const pathOptions: ForModuleOptions = { platform: undefined, directory: undefined };
  assert.equal(PipePath.forModule("ns", "worker-1", pathOptions), PipePath.forModule("ns", "worker-1"));

  const classifyOptions: ClassifyOptions = { floatId: undefined };
  const protocol = new JsonRpcProtocol();
  const request = { jsonrpc: "2.0", id: 1, method: "m" };
  assert.deepEqual(protocol.classify(request, classifyOptions), protocol.classify(request));

  const directory = tempDirectory();
  t.after(() => directory.remove());
  const serverOptions: PipeServerOptions = { unlinkOnListen: undefined, mode: undefined };
  const server = TransportFactory.createPipeServer(serverOptions);
  const path = join(directory.path, "p.sock");
  await server.listen(path);
  try {
    assert.equal(statSync(path).mode & 0o777, 0o600, "mode undefined: the default 0o600");
  } finally {
    await server.close();
  }

  const framingError = new FramingError("truncated", "cut", { size: undefined, limit: undefined });
  assert.equal(framingError.size, undefined);
  assert.equal(framingError.limit, undefined);
  assert.equal(new CodecError("bad", { cause: undefined, path: undefined }).path, undefined);
});

test("a Worker whose options and some hooks are undefined: defaults apply, the undefined hooks are skipped", async (t) => {
  const directory = tempDirectory();
  const worker = new WorkerProcess(fixture("undefined-options"), { dataPath: join(directory.path, "d.sock") });
  t.after(() => {
    worker.kill();
    directory.remove();
  });
  await worker.ready();
  const parent = await worker.openData();
  await worker.waitStderr("hook: ready\n");
  assert.deepEqual((await parent.request("add", { a: 2, b: 3 })).result, 5);
  assert.deepEqual((await worker.request("add", { a: 1, b: 1 })).result, 2);
  // logHandlerErrors and log undefined: the failure is logged to stderr, with the SDK's prefix.
  const failed = await worker.request("fail");
  assert.equal((failed.error as { code: number }).code, -32000);
  await worker.waitStderr("aspect-ipc: 'fail' on the control channel failed:\nTypeError: failed on purpose\n");
  assert.deepEqual((await worker.request("$/shutdown")).result, null);
  assert.deepEqual(await worker.exited, { code: 0, signal: null });
  const hookLines = worker.stderr
    .split("\n")
    .filter((line) => line.startsWith("hook: "))
    .map((line) => line.slice("hook: ".length));
  assert.deepEqual(hookLines, ["controlReady", "ready", "shuttingDown shutdown_request"]);
});
