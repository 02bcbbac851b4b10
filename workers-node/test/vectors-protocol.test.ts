/**
 * The loader test, part two: spec/vectors/handshake.json (the `$/hello` verdict), environment.json
 * (the size limits' grammar) and the `wire_cases` of jsonrpc.json (bytes to verdict: float ids,
 * id recovery). The pure functions behind them are internal to the SDK: they are loaded from the
 * compiled modules beside the bundle.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { CodecError, JsonCodec, JsonRpcProtocol, LengthPrefixedFraming, MessagePackCodec, type ClassifiedMessage, type Codec } from "@aspect-ipc/worker";

import { asVector, fromHex, isFloatTag, loadVectors, sameValue, show, untag } from "./helpers/vectors.js";

/** The SDK's compiled module `path` (relative to dist/), for its internal functions. */
async function internal<T>(path: string): Promise<T> {
  return (await import(new URL(`../${path}`, import.meta.url).href)) as T;
}

// ---- handshake.json --------------------------------------------------------------------------------

interface HelloModule {
  helloVerdict(input: {
    message: ClassifiedMessage | "undecodable";
    protocolIsFloat?: boolean;
    firstFrame: boolean;
    token: string;
    supported: readonly number[];
    workerId: string | null;
    pid: number;
    authenticatedElsewhere: boolean;
  }): { reply: ({ id: unknown; result: unknown } | { id: unknown; error: { code: number; message: string; data?: unknown } }) | null; keepOpen: boolean; authenticated: boolean };
}

interface HandshakeFile {
  token: string;
  supported: number[];
  worker_id: string;
  pid: number;
  pre_hello_max_frame_size: number;
  cases: Array<{
    id: string;
    authenticated_elsewhere: boolean;
    first_frame: boolean;
    message?: unknown;
    undecodable?: boolean;
    expect: { reply: { id: unknown; result?: unknown; error?: { code: number; data?: unknown } } | null; keep_open: boolean; authenticated: boolean };
  }>;
  frame_cases: Array<{ id: string; max_frame_size: number; header: string; expect: "read" | "close" }>;
}

test("handshake.json: the $/hello verdict", async (t) => {
  const { helloVerdict } = await internal<HelloModule>("worker/hello.js");
  const vectors = loadVectors<HandshakeFile>("handshake.json");
  const protocol = new JsonRpcProtocol();
  assert.ok(vectors.cases.length > 0);
  for (const vector of vectors.cases) {
    await t.test(vector.id, () => {
      const raw = vector.message as { id?: unknown; params?: { protocol?: unknown } } | undefined;
      const isMap = raw !== null && typeof raw === "object" && !Array.isArray(raw);
      const message = vector.undecodable === true ? "undecodable" : protocol.classify(untag(vector.message), { floatId: isMap && isFloatTag(raw?.id) });
      const verdict = helloVerdict({
        message,
        protocolIsFloat: isMap && isFloatTag(raw?.params?.protocol),
        firstFrame: vector.first_frame,
        token: vectors.token,
        supported: vectors.supported,
        workerId: vectors.worker_id,
        pid: vectors.pid,
        authenticatedElsewhere: vector.authenticated_elsewhere,
      });
      assert.equal(verdict.keepOpen, vector.expect.keep_open, "keep_open");
      assert.equal(verdict.authenticated, vector.expect.authenticated, "authenticated");
      const expected = vector.expect.reply;
      if (expected === null) {
        assert.equal(verdict.reply, null);
        return;
      }
      assert.ok(verdict.reply !== null, "a reply");
      assert.ok(sameValue(verdict.reply.id, untag(expected.id)), `id ${show(verdict.reply.id)}, expected ${show(expected.id)}`);
      if (expected.error === undefined) {
        assert.ok("result" in verdict.reply && sameValue(verdict.reply.result, untag(expected.result)), show(verdict.reply));
      } else {
        assert.ok("error" in verdict.reply, show(verdict.reply));
        assert.equal(verdict.reply.error.code, expected.error.code);
        if (expected.error.data !== undefined) assert.ok(sameValue(verdict.reply.error.data, untag(expected.error.data)), show(verdict.reply.error));
      }
      // The reply never carries a token, the expected one or the one presented.
      const text = show(verdict.reply);
      const presented = (raw as { params?: { token?: unknown } } | undefined)?.params?.token;
      assert.ok(!text.includes(vectors.token.slice(0, 60)), "no token in the reply");
      if (typeof presented === "string" && presented.length > 8) assert.ok(!text.includes(presented), "not the presented one either");
    });
  }
});

test("handshake.json: frame cases, the pre-hello limit is min(64 KiB, max_frame_size)", async (t) => {
  const vectors = loadVectors<HandshakeFile>("handshake.json");
  assert.ok(vectors.frame_cases.length > 0);
  for (const vector of vectors.frame_cases) {
    await t.test(vector.id, () => {
      const decoder = new LengthPrefixedFraming({ maxFrameSize: vector.max_frame_size }).createDecoder() as ReturnType<
        LengthPrefixedFraming["createDecoder"]
      > & { limitFirstFrame(limit: number): void };
      decoder.limitFirstFrame(vectors.pre_hello_max_frame_size);
      const events = decoder.push(fromHex(vector.header));
      assert.equal(events.length === 0 ? "read" : "close", vector.expect, show(events.map((event) => event.type)));
    });
  }
});

// ---- environment.json ----------------------------------------------------------------------------

interface EnvironmentFile {
  defaults: Record<string, number>;
  cases: Array<{ id: string; variable: string; value: string | null; expect: { limit?: number; error?: boolean } }>;
}

test("environment.json: ASPECT_IPC_MAX_FRAME_SIZE and ASPECT_IPC_MAX_LINE_LENGTH", async (t) => {
  const { readSizeLimit } = await internal<{ readSizeLimit(env: NodeJS.ProcessEnv, name: string, fallback: number): number }>("worker/environment.js");
  const vectors = loadVectors<EnvironmentFile>("environment.json");
  assert.ok(vectors.cases.length > 0);
  for (const vector of vectors.cases) {
    await t.test(vector.id, () => {
      const env: NodeJS.ProcessEnv = vector.value === null ? {} : { [vector.variable]: vector.value };
      const fallback = vectors.defaults[vector.variable] as number;
      if (vector.expect.error === true) {
        assert.throws(
          () => readSizeLimit(env, vector.variable, fallback),
          (error: unknown) => error instanceof Error && error.message.includes(vector.variable) && error.message.includes(JSON.stringify(vector.value)),
        );
      } else {
        assert.equal(readSizeLimit(env, vector.variable, fallback), vector.expect.limit);
      }
    });
  }
});

// ---- jsonrpc.json wire cases -----------------------------------------------------------------------

interface WireFile {
  wire_cases: Array<{ id: string; codec: "json" | "msgpack"; input: string; expect: Record<string, unknown> }>;
}

/** What a receiver makes of the bytes: the classification, or the -32700 with the id it would carry. */
function verdictOf(codec: Codec, bytes: Uint8Array): Record<string, unknown> {
  let decoded: { value: unknown; floatId: boolean };
  try {
    decoded = (codec as Codec & { decodeMessage(bytes: Uint8Array): { value: unknown; floatId: boolean } }).decodeMessage(bytes);
  } catch (error) {
    assert.ok(error instanceof CodecError, String(error));
    return { kind: "parse_error", code: -32700, id: (error as CodecError & { recoveredId?: unknown }).recoveredId ?? null };
  }
  return asVector(new JsonRpcProtocol().classify(decoded.value, { floatId: decoded.floatId }));
}

test("jsonrpc.json: wire cases (float ids by the bytes, ids recovered from refused messages)", async (t) => {
  const vectors = loadVectors<WireFile>("jsonrpc.json");
  assert.ok(vectors.wire_cases.length > 0);
  const codecs = { json: new JsonCodec(), msgpack: new MessagePackCodec() };
  for (const vector of vectors.wire_cases) {
    await t.test(vector.id, () => {
      const actual = verdictOf(codecs[vector.codec], fromHex(vector.input));
      const expected = untag(vector.expect);
      assert.ok(sameValue(actual, expected), `got ${show(actual)}, expected ${show(expected)}`);
    });
  }
});
