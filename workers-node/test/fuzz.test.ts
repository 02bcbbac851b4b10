/**
 * Randomized chunking and corruption tests of the decoders (issue 9): the length-prefixed and
 * line-delimited frame decoders and the MessagePack and JSON codecs.
 *
 * - Valid streams cut at random points decode to exactly the frames of a whole-buffer reference
 *   model of the spec (PROTOCOL.md sections 1 and 2), whatever the cuts.
 * - Corrupted streams (flipped bytes, truncations, oversized and zero lengths, garbage) give
 *   exactly the model's frames and typed FramingErrors, never another exception, and an oversized
 *   length is refused without allocating what it declares.
 * - Random and mutated bytes given to the codecs decode or fail with a CodecError, nothing else;
 *   what decodes re-encodes stably.
 *
 * Deterministic: iteration i of a property runs on seed BASE + i. Short by default (a few
 * seconds); longer with ASPECT_IPC_FUZZ_ITERATIONS=<n per property> (`make fuzz`), from another
 * base with ASPECT_IPC_FUZZ_SEED=<n>. A failure names its seed and the command that replays it.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  CodecError,
  FramingError,
  JsonCodec,
  JsonRpcProtocol,
  LengthPrefixedFraming,
  LineDelimitedFraming,
  MessagePackCodec,
  type FrameDecoder,
  type FrameEvent,
  type Framing,
} from "@aspect-ipc/worker";

import { Random, randomValue } from "./helpers/random.js";
import { toHex } from "./helpers/vectors.js";

const ITERATIONS = positiveInteger(process.env.ASPECT_IPC_FUZZ_ITERATIONS, 250);
const BASE_SEED = positiveInteger(process.env.ASPECT_IPC_FUZZ_SEED, 1);
const FRAMING_KINDS = new Set(["frame_too_large", "empty_frame", "truncated", "line_too_long", "invalid_line"]);

function positiveInteger(text: string | undefined, fallback: number): number {
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`expected a non-negative integer, got ${JSON.stringify(text)}`);
  return value;
}

/** Runs `property` once per iteration with its own seeded generator; a failure names the seed. */
function forEachSeed(name: string, property: (random: Random) => void): void {
  for (let iteration = 0; iteration < ITERATIONS; iteration++) {
    const seed = BASE_SEED + iteration;
    try {
      property(new Random(seed));
    } catch (error) {
      const replay = `ASPECT_IPC_FUZZ_SEED=${seed} ASPECT_IPC_FUZZ_ITERATIONS=1 node --test --test-name-pattern="${name}" dist/test/fuzz.test.js`;
      throw new Error(`${name}: failed with seed ${seed} (replay in workers-node: ${replay}): ${(error as Error).message}`, { cause: error });
    }
  }
}

// ---- helpers ------------------------------------------------------------------------------------

type Event = { frame: string } | { error: string };

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Cuts `bytes` at random points: few cuts, many cuts, single bytes, empty chunks. */
function randomChunks(random: Random, bytes: Uint8Array): Uint8Array[] {
  const style = random.int(0, 3);
  if (style === 0) return [bytes];
  if (style === 1 && bytes.length <= 4096) return Array.from(bytes, (byte) => Uint8Array.of(byte));
  const cuts = new Set<number>();
  const count = style === 2 ? random.int(1, 4) : random.int(1, Math.min(2000, Math.max(1, bytes.length)));
  for (let index = 0; index < count; index++) cuts.add(random.int(0, bytes.length));
  const sorted = [...cuts].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const cut of sorted) {
    chunks.push(bytes.slice(start, cut)); // may be empty: an empty read must change nothing
    start = cut;
  }
  chunks.push(bytes.slice(start));
  return chunks;
}

/** Feeds the chunks to a fresh decoder; every event must be a frame or a typed FramingError. */
function decodeIncrementally(framing: Framing, chunks: Uint8Array[], eof: boolean): Event[] {
  const decoder = framing.createDecoder();
  const events: FrameEvent[] = [];
  for (const chunk of chunks) events.push(...decoder.push(chunk));
  if (eof) events.push(...decoder.end());
  return events.map((event) => {
    if (event.type === "frame") return { frame: toHex(event.frame) };
    assert.ok(event.error instanceof FramingError, "errors are FramingErrors");
    assert.ok(FRAMING_KINDS.has(event.error.kind), `known kind: ${event.error.kind}`);
    return { error: event.error.kind };
  });
}

function header(size: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, size);
  return bytes;
}

/** PROTOCOL.md section 2 on a whole buffer: frames until the first (fatal) error. */
function lengthPrefixedModel(bytes: Uint8Array, max: number, eof: boolean): Event[] {
  const events: Event[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    if (bytes.length - pos < 4) {
      if (eof) events.push({ error: "truncated" });
      return events;
    }
    const size = new DataView(bytes.buffer, bytes.byteOffset + pos, 4).getUint32(0);
    if (size === 0) return [...events, { error: "empty_frame" }];
    if (size > max) return [...events, { error: "frame_too_large" }];
    if (bytes.length - pos - 4 < size) {
      if (eof) events.push({ error: "truncated" });
      return events;
    }
    events.push({ frame: toHex(bytes.subarray(pos + 4, pos + 4 + size)) });
    pos += 4 + size;
  }
  return events;
}

const isBlank = (line: Uint8Array): boolean => line.every((byte) => byte === 0x20 || byte === 0x09 || byte === 0x0d);

/** PROTOCOL.md section 1 on a whole buffer: one event per non-blank line, errors are not fatal. */
function lineDelimitedModel(bytes: Uint8Array, max: number, eof: boolean): Event[] {
  const events: Event[] = [];
  let start = 0;
  for (let index = 0; index < bytes.length; index++) {
    if (bytes[index] !== 0x0a) continue;
    let line = bytes.subarray(start, index);
    start = index + 1;
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
    if (line.length > max) events.push({ error: "line_too_long" });
    else if (!isBlank(line)) events.push({ frame: toHex(line) });
  }
  const tail = bytes.subarray(start);
  if (tail.length > max + 1) events.push({ error: "line_too_long" }); // reported as soon as it grew too long
  else if (eof && tail.length > max) events.push({ error: "line_too_long" });
  else if (eof && !isBlank(tail)) events.push({ error: "truncated" });
  return events;
}

/** A random mutation of `bytes`: flipped bytes, a cut, inserted or overwritten garbage, a forged length. */
function mutate(random: Random, bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(bytes);
  switch (random.int(0, 5)) {
    case 0: {
      for (let flips = random.int(1, 4); flips > 0 && copy.length > 0; flips--) {
        const at = random.int(0, copy.length - 1);
        copy[at] = (copy[at] as number) ^ (1 << random.int(0, 7));
      }
      return copy;
    }
    case 1:
      return copy.slice(0, random.int(0, copy.length));
    case 2: {
      const at = random.int(0, copy.length);
      return concat([copy.subarray(0, at), random.bytes(random.int(1, 12)), copy.subarray(at)]);
    }
    case 3: {
      for (let index = random.int(0, copy.length); index < copy.length && random.chance(0.9); index++) copy[index] = random.int(0, 255);
      return copy;
    }
    case 4: {
      // A forged 4-byte big length somewhere (a frame header, or a str/bin/array/map size).
      if (copy.length < 4) return random.bytes(random.int(0, 8));
      const at = random.int(0, copy.length - 4);
      new DataView(copy.buffer).setUint32(at, random.pick([0xffff_ffff, 0x8000_0000, 0x0400_0000, random.int(1, 0xffff_ffff)]));
      return copy;
    }
    default:
      return random.bytes(random.int(0, 64));
  }
}

// ---- length-prefixed framing -----------------------------------------------------------------------

function randomFrameStream(random: Random): { payloads: Uint8Array[]; stream: Uint8Array; max: number; headers: number[] } {
  const payloads = Array.from({ length: random.int(0, 12) }, () => random.bytes(random.pick([1, 2, 3, 4, 5, 17, 255, 256, 1000, 70_000])));
  const largest = Math.max(1, ...payloads.map((payload) => payload.length));
  const max = random.chance(0.3) ? largest : largest + random.int(0, 100_000);
  const stream = concat(payloads.flatMap((payload) => [header(payload.length), payload]));
  const headers: number[] = [];
  for (let offset = 0, index = 0; index < payloads.length; offset += 4 + (payloads[index] as Uint8Array).length, index++) headers.push(offset);
  return { payloads, stream, max, headers };
}

test("fuzz: length-prefixed streams cut anywhere decode to the same frames", () => {
  forEachSeed("length-prefixed streams cut anywhere", (random) => {
    const { payloads, stream, max } = randomFrameStream(random);
    const framing = new LengthPrefixedFraming({ maxFrameSize: max });
    const events = decodeIncrementally(framing, randomChunks(random, stream), true);
    assert.deepEqual(events, payloads.map((payload) => ({ frame: toHex(payload) })));
  });
});

test("fuzz: corrupted length-prefixed streams give the model's frames and typed errors, nothing else", () => {
  forEachSeed("corrupted length-prefixed streams", (random) => {
    const { stream, max, headers } = randomFrameStream(random);
    let corrupted = mutate(random, stream);
    if (headers.length > 0 && random.chance(0.3)) {
      // A header at the limits: 0, the limit, one past it.
      corrupted = new Uint8Array(stream);
      new DataView(corrupted.buffer).setUint32(random.pick(headers), random.pick([0, max, max + 1]));
    }
    const eof = random.chance(0.7);
    const framing = new LengthPrefixedFraming({ maxFrameSize: max });
    const events = decodeIncrementally(framing, randomChunks(random, corrupted), eof);
    assert.deepEqual(events, lengthPrefixedModel(corrupted, max, eof));
    const errors = events.filter((event) => "error" in event);
    assert.ok(errors.length <= 1 && (errors.length === 0 || "error" in (events.at(-1) as Event)), "an error is fatal: nothing follows it");
  });
});

test("fuzz: an oversized length is refused from its header, without allocating what it declares", () => {
  const before = process.memoryUsage().arrayBuffers;
  forEachSeed("oversized length", (random) => {
    const max = random.int(1, 1024 * 1024);
    const declared = random.chance(0.3) ? max + 1 : random.int(max + 1, 0xffff_ffff);
    const framing = new LengthPrefixedFraming({ maxFrameSize: max });
    const prefix = random.chance(0.5) ? concat([header(1), Uint8Array.of(7)]) : new Uint8Array(0);
    const stream = concat([prefix, header(declared), random.bytes(random.int(0, 16))]);
    const events = decodeIncrementally(framing, randomChunks(random, stream), random.chance(0.5));
    assert.deepEqual(events.at(-1), { error: "frame_too_large" });
    assert.equal(events.length, prefix.length > 0 ? 2 : 1);
  });
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.ok(grown < 64 * 1024 * 1024, `array buffers grew by ${grown} bytes: a declared length was allocated`);
});

test("fuzz: a large length within the limit holds only what arrived, not what it declares", () => {
  const before = process.memoryUsage().arrayBuffers;
  const held: FrameDecoder[] = []; // every decoder holds its partial frame until the measurement
  forEachSeed("large length within the limit", (random) => {
    const framing = new LengthPrefixedFraming({ maxFrameSize: 0xffff_ffff });
    const declared = random.int(256 * 1024 * 1024, 0xffff_ffff);
    const sent = random.bytes(random.int(0, 8192));
    const decoder = framing.createDecoder();
    const events = randomChunks(random, concat([header(declared), sent])).flatMap((chunk) => decoder.push(chunk));
    assert.deepEqual(events, [], "no frame until all of it arrived");
    held.push(decoder);
  });
  // Each decoder may hold about twice the 8 KiB it was sent at most; one reserving what its header
  // declares (256 MiB or more) is far over.
  const grown = process.memoryUsage().arrayBuffers - before;
  const allowed = 16 * 1024 * 1024 + held.length * 24 * 1024;
  assert.ok(grown < allowed, `array buffers grew by ${grown} bytes for ${held.length} decoders: a declared length was reserved`);
  for (const decoder of held) {
    assert.deepEqual(decoder.end().map((event) => event.type === "error" && event.error.kind), ["truncated"]);
  }
});

// ---- line-delimited framing ------------------------------------------------------------------------

const LINE_ALPHABET = [0x0a, 0x0a, 0x0d, 0x20, 0x09, 0x61, 0x62, 0x7b, 0x7d, 0x22, 0xc3, 0xa9, 0x00, 0xff];

function randomLineStream(random: Random): Uint8Array {
  const length = random.pick([0, 1, 5, 40, 200, 3000]);
  const bytes = new Uint8Array(length);
  const newlineRate = random.pick([0.02, 0.1, 0.3]);
  for (let index = 0; index < length; index++) {
    bytes[index] = random.chance(newlineRate) ? 0x0a : random.chance(0.5) ? random.pick(LINE_ALPHABET) : random.int(0, 255);
  }
  return bytes;
}

test("fuzz: line-delimited streams, cut anywhere and corrupted, decode as the model says", () => {
  forEachSeed("line-delimited streams", (random) => {
    const max = random.pick([1, 2, 8, 33, 100, 1_048_576]);
    const stream = random.chance(0.3) ? mutate(random, randomLineStream(random)) : randomLineStream(random);
    const eof = random.chance(0.7);
    const framing = new LineDelimitedFraming({ maxLineLength: max });
    assert.deepEqual(decodeIncrementally(framing, randomChunks(random, stream), eof), lineDelimitedModel(stream, max, eof));
  });
});

// ---- codecs ----------------------------------------------------------------------------------------

/** Decodes `bytes`; anything but a value or a CodecError fails. What decodes must re-encode stably. */
function decodesOrCodecError(codec: MessagePackCodec | JsonCodec, bytes: Uint8Array): void {
  let value: unknown;
  try {
    value = codec.decode(bytes);
  } catch (error) {
    assert.ok(error instanceof CodecError, `${codec.name} decode threw ${String(error)} for ${toHex(bytes)}`);
    return;
  }
  let once: Uint8Array;
  try {
    once = codec.encode(value);
  } catch (error) {
    // JSON can decode what it cannot write back (1e999 is Infinity); MessagePack cannot.
    assert.ok(codec instanceof JsonCodec && error instanceof CodecError, `re-encoding ${toHex(bytes)} threw ${String(error)}`);
    return;
  }
  assert.equal(toHex(codec.encode(codec.decode(once))), toHex(once), `re-encoding is stable for ${toHex(bytes)}`);
}

test("fuzz: MessagePack decoding of random and mutated bytes gives a value or a CodecError", () => {
  const codec = new MessagePackCodec();
  const protocol = new JsonRpcProtocol();
  forEachSeed("MessagePack decoding", (random) => {
    const value = random.chance(0.5) ? randomValue(random, 3) : { jsonrpc: "2.0", id: random.int(0, 99), method: "m", params: [randomValue(random, 2)] };
    const valid = codec.encode(value);
    assert.deepEqual(codec.decode(valid), value, "a valid encoding decodes to its value");
    const input = random.chance(0.2) ? random.bytes(random.int(0, 40)) : mutate(random, valid);
    decodesOrCodecError(codec, input);
    // What a channel does with a decoded frame never throws either.
    try {
      protocol.classify(codec.decode(input));
    } catch (error) {
      assert.ok(error instanceof CodecError, String(error));
    }
  });
});

test("fuzz: MessagePack sizes that lie are refused without allocating what they declare", () => {
  const codec = new MessagePackCodec();
  const before = process.memoryUsage().arrayBuffers;
  forEachSeed("MessagePack sizes that lie", (random) => {
    const head = random.pick([0xc6, 0xdb, 0xdd, 0xdf, 0xc5, 0xda, 0xdc, 0xde]);
    const width = head === 0xc6 || head === 0xdb || head === 0xdd || head === 0xdf ? 4 : 2;
    const size = width === 4 ? random.int(1_000_000, 0xffff_ffff) : random.int(100, 0xffff);
    const lengthBytes = width === 4 ? header(size) : Uint8Array.of(size >> 8, size & 0xff);
    const input = concat([random.chance(0.5) ? Uint8Array.of(0x91) : new Uint8Array(0), Uint8Array.of(head), lengthBytes, random.bytes(random.int(0, 20))]);
    assert.throws(() => codec.decode(input), CodecError);
  });
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.ok(grown < 64 * 1024 * 1024, `array buffers grew by ${grown} bytes: a declared size was allocated`);
});

test("fuzz: JSON decoding of random and mutated bytes gives a value or a CodecError", () => {
  const codec = new JsonCodec();
  forEachSeed("JSON decoding", (random) => {
    const text = JSON.stringify({ jsonrpc: "2.0", id: random.int(0, 9), params: [random.int(-5, 5), "é😀", { a: [null, true] }] });
    const input = random.chance(0.2) ? random.bytes(random.int(0, 40)) : mutate(random, new TextEncoder().encode(text));
    decodesOrCodecError(codec, input);
  });
});
