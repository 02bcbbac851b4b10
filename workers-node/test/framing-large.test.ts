/**
 * Receiving a frame that spans chunks (PROTOCOL.md 2): straight into one buffer of its size, each
 * chunk copied into it as it arrives, so that a large frame costs its size once, not twice (pieces
 * kept until the end, then joined: a 2 GiB payload peaked at 4.1 GB). What a header declares is not
 * reserved before 1/16 of a large frame has arrived.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { LengthPrefixedFraming } from "@aspect-ipc/worker";

const header = (size: number): Uint8Array => {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(size);
  return bytes;
};

/** Feeds a `size`-byte frame (byte i is i % 251) in chunks of `chunk` bytes; each chunk is overwritten as soon as it was pushed. */
function receive(size: number, chunk: number, reused: boolean): Uint8Array {
  const decoder = new LengthPrefixedFraming({ maxFrameSize: 2 ** 32 - 1 }).createDecoder();
  assert.deepEqual(decoder.push(header(size)), []);
  const frames: Uint8Array[] = [];
  for (let at = 0; at < size; at += chunk) {
    const piece = new Uint8Array(Math.min(chunk, size - at));
    for (let index = 0; index < piece.length; index++) piece[index] = (at + index) % 251;
    for (const event of decoder.push(piece)) {
      assert.equal(event.type, "frame");
      if (event.type === "frame") frames.push(event.frame);
    }
    if (reused) piece.fill(0xee); // a reader that reuses its buffer: fine once the bytes were copied
  }
  assert.equal(frames.length, 1);
  return frames[0] as Uint8Array;
}

function check(frame: Uint8Array, size: number): void {
  assert.equal(frame.byteLength, size);
  assert.equal(frame.buffer.byteLength, size, "one buffer of exactly the frame's size");
  for (let index = 0; index < size; index += 4093) assert.equal(frame[index], index % 251, `byte ${index}`);
  assert.equal(frame[size - 1], (size - 1) % 251);
}

test("a frame of up to 4 MiB is received into its own buffer from its first chunk on", () => {
  const size = 3 * 1024 * 1024 + 17;
  check(receive(size, 64 * 1024, true), size);
  check(receive(size, 1000, true), size);
});

test("a larger frame is received into its own buffer once 1/16 of it has arrived, the rest copied in as it comes", () => {
  const size = 64 * 1024 * 1024 + 5;
  // Overwriting the chunks after 1/16 (4 MiB) plus one chunk must not change the frame: they were
  // copied into it as they came, not kept and joined at the end.
  const decoder = new LengthPrefixedFraming({ maxFrameSize: 2 ** 32 - 1 }).createDecoder();
  decoder.push(header(size));
  const chunk = 64 * 1024;
  let frame: Uint8Array | undefined;
  for (let at = 0; at < size; at += chunk) {
    const piece = new Uint8Array(Math.min(chunk, size - at));
    for (let index = 0; index < piece.length; index++) piece[index] = (at + index) % 251;
    for (const event of decoder.push(piece)) if (event.type === "frame") frame = event.frame;
    if (at >= size / 16 + chunk) piece.fill(0xee);
  }
  assert.ok(frame !== undefined);
  check(frame, size);
});

test("a payload that fills one chunk exactly, after its header, is that chunk (no copy)", () => {
  const decoder = new LengthPrefixedFraming().createDecoder();
  decoder.push(header(5000));
  const chunk = new Uint8Array(5000).fill(3);
  const [event] = decoder.push(chunk);
  assert.ok(event?.type === "frame" && event.frame.buffer === chunk.buffer);
});

test("a header declaring 1 GiB reserves nothing until its bytes come", () => {
  const decoder = new LengthPrefixedFraming({ maxFrameSize: 2 ** 32 - 1 }).createDecoder();
  const before = process.memoryUsage().arrayBuffers;
  decoder.push(header(1024 * 1024 * 1024));
  decoder.push(new Uint8Array(10));
  assert.ok(process.memoryUsage().arrayBuffers - before < 1024 * 1024);
});
