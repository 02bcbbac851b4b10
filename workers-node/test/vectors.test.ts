/**
 * The loader test: runs every case of every file in spec/vectors/ (spec/vectors/README.md).
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { test } from "node:test";

import {
  CodecError,
  FramingError,
  JsonCodec,
  JsonRpcProtocol,
  LengthPrefixedFraming,
  LineDelimitedFraming,
  MessagePackCodec,
  PathError,
  PipePath,
  type ClassifiedMessage,
  type Codec,
  type Framing,
  type PathPlatform,
} from "@aspect-ipc/worker";

import { TAGGED_CHANNELS } from "./helpers/tagged-wire.js";
import { VECTORS_DIRECTORY, asVector, fromHex, loadVectors, sameValue, show, toHex, untag } from "./helpers/vectors.js";

interface FramingFile {
  max_frame_size?: number;
  max_line_length?: number;
  cases: Array<{ id: string; input: string; eof: boolean; events: Array<{ frame?: string; error?: string }>; max_frame_size?: number; max_line_length?: number }>;
  encode_cases: Array<{ id: string; payload: string; output?: string; error?: string; max_frame_size?: number; max_line_length?: number }>;
}

interface CodecFile {
  cases?: Array<{ id: string; value: unknown; encodings: string[] }>;
  decode_cases?: Array<{ id: string; input: string; value: unknown }>;
  error_cases?: Array<{ id: string; input: string }>;
  encode_cases?: Array<{ id: string; value: unknown; encodings: string[] }>;
  encode_error_cases?: Array<{ id: string; value: unknown }>;
}

/** Every file, each run here, by vectors-protocol.test.ts (environment, handshake, jsonrpc wire cases) or vectors-streams.test.ts. */
const HANDLED_FILES = [
  "codec-json.json",
  "codec-msgpack.json",
  "environment.json",
  "framing-length-prefixed.json",
  "framing-line-delimited.json",
  "handshake.json",
  "jsonrpc.json",
  "paths.json",
  "streams.json",
];

test("every vector file is run by the loaders", () => {
  const files = readdirSync(VECTORS_DIRECTORY).filter((name) => name.endsWith(".json")).sort();
  assert.deepEqual(files, HANDLED_FILES);
});

// ---- framing --------------------------------------------------------------------------------------

/** Feeds `chunks` to a fresh decoder and returns the events as the vectors write them. */
function decodeEvents(framing: Framing, chunks: Uint8Array[], eof: boolean): Array<{ frame?: string; error?: string }> {
  const decoder = framing.createDecoder();
  const events = chunks.flatMap((chunk) => decoder.push(chunk));
  if (eof) events.push(...decoder.end());
  return events.map((event) => (event.type === "frame" ? { frame: toHex(event.frame) } : { error: event.error.kind }));
}

function runFramingFile(file: string, makeFraming: (limit: number | undefined) => Framing): void {
  const vectors = loadVectors<FramingFile>(file);
  test(`${file}: decoder cases, whole / split at every byte / byte by byte`, async (t) => {
    assert.ok(vectors.cases.length > 0);
    for (const vector of vectors.cases) {
      await t.test(vector.id, () => {
        const framing = makeFraming(vector.max_frame_size ?? vector.max_line_length);
        const input = fromHex(vector.input);
        assert.deepEqual(decodeEvents(framing, [input], vector.eof), vector.events, "whole input");
        for (let cut = 0; cut <= input.length; cut++) {
          const chunks = [input.slice(0, cut), input.slice(cut)];
          assert.deepEqual(decodeEvents(framing, chunks, vector.eof), vector.events, `split at ${cut}`);
        }
        const bytes = Array.from(input, (byte) => Uint8Array.of(byte));
        assert.deepEqual(decodeEvents(framing, bytes, vector.eof), vector.events, "byte by byte");
      });
    }
  });
  test(`${file}: encode cases`, async (t) => {
    assert.ok(vectors.encode_cases.length > 0);
    for (const vector of vectors.encode_cases) {
      await t.test(vector.id, () => {
        const framing = makeFraming(vector.max_frame_size ?? vector.max_line_length);
        const payload = fromHex(vector.payload);
        if (vector.error !== undefined) {
          assert.throws(() => framing.encode(payload), (error: unknown) => error instanceof FramingError && error.kind === vector.error);
        } else {
          assert.equal(toHex(framing.encode(payload)), vector.output);
        }
      });
    }
  });
}

runFramingFile("framing-length-prefixed.json", (limit) => new LengthPrefixedFraming(limit === undefined ? {} : { maxFrameSize: limit }));
runFramingFile("framing-line-delimited.json", (limit) => new LineDelimitedFraming(limit === undefined ? {} : { maxLineLength: limit }));

// ---- codecs ----------------------------------------------------------------------------------------

function runCodecFile(file: string, codec: Codec): void {
  const vectors = loadVectors<CodecFile>(file);
  const roundTrips = [...(vectors.cases ?? []), ...(vectors.encode_cases ?? [])];
  test(`${file}: encode cases (output is one of the encodings)`, async (t) => {
    assert.ok(roundTrips.length > 0);
    for (const vector of roundTrips) {
      await t.test(vector.id, () => {
        const output = toHex(codec.encode(untag(vector.value)));
        assert.ok(vector.encodings.includes(output), `${output} not in ${vector.encodings.join(", ")}`);
      });
    }
  });
  test(`${file}: decode cases (every encoding decodes to the value)`, async (t) => {
    const decodes = [
      ...(vectors.cases ?? []).flatMap((vector) => vector.encodings.map((input, index) => ({ id: `${vector.id}#${index}`, input, value: vector.value }))),
      ...(vectors.decode_cases ?? []),
    ];
    assert.ok(decodes.length > 0);
    for (const vector of decodes) {
      await t.test(vector.id, () => {
        const expected = untag(vector.value);
        const actual = codec.decode(fromHex(vector.input));
        assert.ok(sameValue(actual, expected), `decoded ${show(actual)}, expected ${show(expected)}`);
      });
    }
  });
  test(`${file}: error cases (decoding fails with a CodecError)`, async (t) => {
    assert.ok((vectors.error_cases ?? []).length > 0);
    for (const vector of vectors.error_cases ?? []) {
      await t.test(vector.id, () => {
        assert.throws(() => codec.decode(fromHex(vector.input)), CodecError);
      });
    }
  });
  test(`${file}: encode error cases (encoding fails with a CodecError)`, async (t) => {
    assert.ok((vectors.encode_error_cases ?? []).length > 0);
    for (const vector of vectors.encode_error_cases ?? []) {
      await t.test(vector.id, () => {
        assert.throws(() => codec.encode(untag(vector.value)), CodecError);
      });
    }
  });
}

runCodecFile("codec-msgpack.json", new MessagePackCodec());
runCodecFile("codec-json.json", new JsonCodec());

// ---- JSON-RPC ----------------------------------------------------------------------------------------

interface InboundModule {
  decodeFrame(codec: Codec, protocol: JsonRpcProtocol, frame: Uint8Array): { kind: "message"; message: ClassifiedMessage } | { kind: "parse_error"; error: CodecError };
}

/**
 * Each message is written as a peer that keeps the kind of its numbers sends it (a `$float` is a
 * float on the wire: `1.0`, MessagePack float 64), on data and on control, and goes through what
 * the channel does with a frame: the codec, then the classifier, told what the decoder noted that
 * the value cannot show (a float `id`, a float `error.code`).
 */
test("jsonrpc.json: classification cases, as bytes on data and on control through the channel's decoding", async (t) => {
  const { decodeFrame } = (await import(new URL("../channel/inbound.js", import.meta.url).href)) as InboundModule;
  const vectors = loadVectors<{ cases: Array<{ id: string; message: unknown; expect: unknown }> }>("jsonrpc.json");
  const protocol = new JsonRpcProtocol();
  const codecs: Record<"data" | "control", Codec> = { data: new MessagePackCodec(), control: new JsonCodec() };
  assert.ok(vectors.cases.length > 0);
  for (const vector of vectors.cases) {
    await t.test(vector.id, () => {
      const expected = untag(vector.expect);
      let sent = 0;
      for (const { name, write } of TAGGED_CHANNELS) {
        const bytes = write(vector.message);
        if (bytes === null) continue;
        const item = decodeFrame(codecs[name], protocol, bytes);
        assert.equal(item.kind, "message", `on ${name}: ${item.kind === "parse_error" ? item.error.message : ""}`);
        const actual = asVector((item as { message: ClassifiedMessage }).message);
        assert.ok(sameValue(actual, expected), `on ${name}: classified ${show(actual)}, expected ${show(expected)}`);
        sent++;
      }
      assert.ok(sent > 0, "the case has a form on some channel");
    });
  }
});

// ---- paths ---------------------------------------------------------------------------------------------

interface PathsFile {
  cases: Array<{ id: string; namespace: string; worker_id: string; platform: PathPlatform; directory?: string; path?: string; error?: string }>;
  empty_name_cases: Array<{ id: string; namespace: string; worker_id: string }>;
}

test("paths.json: PipePath.forModule cases", async (t) => {
  const vectors = loadVectors<PathsFile>("paths.json");
  assert.ok(vectors.cases.length > 0);
  for (const vector of vectors.cases) {
    await t.test(vector.id, () => {
      const options = { platform: vector.platform, ...(vector.directory === undefined ? {} : { directory: vector.directory }) };
      if (vector.error !== undefined) {
        assert.throws(
          () => PipePath.forModule(vector.namespace, vector.worker_id, options),
          (error: unknown) => error instanceof PathError && error.kind === vector.error,
        );
      } else {
        assert.equal(PipePath.forModule(vector.namespace, vector.worker_id, options), vector.path);
      }
    });
  }
  for (const vector of vectors.empty_name_cases) {
    await t.test(vector.id, () => {
      assert.throws(
        () => PipePath.forModule(vector.namespace, vector.worker_id, { platform: "linux" }),
        (error: unknown) => error instanceof PathError && error.kind === "empty_name",
      );
    });
  }
});
