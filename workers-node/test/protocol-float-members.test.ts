/**
 * A float where the protocol needs an integer, outside streams (PROTOCOL.md 3.1, 4.2, 9.1), from
 * the bytes: an error response's `error.code` and `$/cancelRequest`'s `params.id`, written as
 * MessagePack float 64 or float 32 on data and as a float token (`7.0`, `7e0`) on control. The
 * error response is decoded and classified as a channel does it (an invalid response, as for any
 * other wrong type); the cancellation goes to a real channel over a real socket (it cancels nothing).
 * A float anywhere else is the number it was.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";

import {
  ChannelBuilder,
  CodecError,
  ErrorCodes,
  JsonCodec,
  JsonRpcProtocol,
  LengthPrefixedFraming,
  LineDelimitedFraming,
  MessagePackCodec,
  TransportFactory,
  type Channel,
  type ClassifiedMessage,
  type Codec,
  type Framing,
} from "@aspect-ipc/worker";

import { SLOT, float64, floatForms } from "./helpers/float-forms.js";
import { tempDirectory } from "./helpers/parent.js";
import { TAGGED_CHANNELS, taggedJson, taggedMessagePack } from "./helpers/tagged-wire.js";
import { asVector } from "./helpers/vectors.js";

type Message = Record<string, unknown>;

interface InboundModule {
  decodeFrame(codec: Codec, protocol: JsonRpcProtocol, frame: Uint8Array): { kind: "message"; message: ClassifiedMessage } | { kind: "parse_error"; error: CodecError };
}

const { decodeFrame } = (await import(new URL("../channel/inbound.js", import.meta.url).href)) as InboundModule;
const protocol = new JsonRpcProtocol();
const CODECS: Record<"data" | "control", Codec> = { data: new MessagePackCodec(), control: new JsonCodec() };

/** A frame's verdict as a channel reaches it: decoded by the channel's codec, then classified. */
function verdict(channel: "data" | "control", bytes: Uint8Array): Message {
  const item = decodeFrame(CODECS[channel], protocol, bytes);
  assert.equal(item.kind, "message", item.kind === "parse_error" ? item.error.message : "");
  return asVector((item as { message: ClassifiedMessage }).message);
}

/** The tagged message as a peer writes it on `channel`. */
function written(channel: "data" | "control", message: unknown): Uint8Array {
  return channel === "data" ? taggedMessagePack(message) : Buffer.from(taggedJson(message) as string);
}

const errorResponse = (code: unknown): Message => ({ jsonrpc: "2.0", id: 1, error: { code, message: "m" } });

test("an error response whose code is an integral float is an invalid response, as with any other wrong type, on both channels, in every float form", () => {
  const invalid = { kind: "invalid", code: ErrorCodes.InvalidRequest, id: 1, reply: false };
  for (const channel of ["data", "control"] as const) {
    assert.deepEqual(verdict(channel, written(channel, errorResponse(-32000))), { kind: "error_response", id: 1, code: -32000, message: "m" }, `${channel}: the integer`);
    assert.deepEqual(verdict(channel, written(channel, errorResponse("-32000"))), invalid, `${channel}: a string`);
  }
  for (const code of [-32000, 0, 1]) {
    for (const { form, channel, bytes } of floatForms(errorResponse(SLOT), code)) {
      assert.deepEqual(verdict(channel, bytes), invalid, `code ${code} as ${form}`);
    }
  }
});

test("an error response's code is judged by its last occurrence, as its value is", () => {
  const line = (codes: string): Uint8Array => Buffer.from(`{"jsonrpc":"2.0","id":1,"error":{${codes},"message":"m"}}`);
  assert.equal(verdict("control", line(`"code":-32000.0,"code":-32000`)).kind, "error_response");
  assert.equal(verdict("control", line(`"code":-32000,"code":-32000.0`)).kind, "invalid");
  // MessagePack: {jsonrpc, id, error: {code, code, message}}.
  const scalars = new MessagePackCodec();
  const head = Buffer.concat([Buffer.from([0x83]), scalars.encode("jsonrpc"), scalars.encode("2.0"), scalars.encode("id"), scalars.encode(1), scalars.encode("error"), Buffer.from([0x83])]);
  const frame = (first: Uint8Array, second: Uint8Array): Uint8Array =>
    Buffer.concat([head, scalars.encode("code"), first, scalars.encode("code"), second, scalars.encode("message"), scalars.encode("m")]);
  assert.equal(verdict("data", frame(float64(-32000), scalars.encode(-32000))).kind, "error_response");
  assert.equal(verdict("data", frame(scalars.encode(-32000), float64(-32000))).kind, "invalid");
});

test("a float code or id anywhere else is the number it was: error data, a result, a request's params, a notification's", () => {
  // A guard: these pass with or without the members noted, and must go on passing.
  const withData = { jsonrpc: "2.0", id: 1, error: { code: -32000, message: "m", data: { code: { $float: 7 }, error: { code: { $float: 1 } } } } };
  const result = { jsonrpc: "2.0", id: 2, result: { code: { $float: 7 }, error: { code: { $float: 1 } }, id: { $float: 3 } } };
  const request = { jsonrpc: "2.0", id: 3, method: "m", params: { id: { $float: 7 }, code: { $float: 1 }, error: { code: { $float: 2 } } } };
  const notification = { jsonrpc: "2.0", method: "note", params: { id: { $float: 7 } } };
  for (const { name: channel } of TAGGED_CHANNELS) {
    assert.deepEqual(verdict(channel, written(channel, withData)), { kind: "error_response", id: 1, code: -32000, message: "m", data: { code: 7, error: { code: 1 } } }, channel);
    assert.deepEqual(verdict(channel, written(channel, result)), { kind: "response", id: 2, result: { code: 7, error: { code: 1 }, id: 3 } }, channel);
    assert.deepEqual(verdict(channel, written(channel, request)), { kind: "request", id: 3, method: "m", params: { id: 7, code: 1, error: { code: 2 } } }, channel);
    assert.deepEqual(verdict(channel, written(channel, notification)), { kind: "notification", method: "note", params: { id: 7 } }, channel);
  }
});

/** A channel of the kind `channel` names over a real socket, and the peer's raw end of it. */
async function channelWithWriter(t: { after(fn: () => Promise<void>): void }, channel: "data" | "control"): Promise<{ worker: Channel; write(payload: Uint8Array): void; answers: Message[] }> {
  const directory = tempDirectory();
  const path = join(directory.path, "c.sock");
  const server = TransportFactory.createPipeServer();
  const accepted = new Promise<Awaited<ReturnType<typeof TransportFactory.connectPipe>>>((resolve) => server.onConnection(resolve));
  await server.listen(path);
  const client = await TransportFactory.connectPipe(path);
  const framing: Framing = channel === "data" ? new LengthPrefixedFraming() : new LineDelimitedFraming();
  const worker = new ChannelBuilder().withTransport(await accepted).withFraming(framing).withCodec(CODECS[channel]).withProtocol(protocol).withName(channel).build();
  const answers: Message[] = [];
  const decoder = framing.createDecoder();
  client.open({
    data: (chunk) => {
      for (const event of decoder.push(chunk)) if (event.type === "frame") answers.push(CODECS[channel].decode(event.frame) as Message);
    },
    end: () => undefined,
    error: () => undefined,
  });
  t.after(async () => {
    await worker.close();
    await client.close();
    await server.close();
    directory.remove();
  });
  return { worker, write: (payload) => void client.write(framing.encode(payload)), answers };
}

async function answerTo(answers: Message[], id: number): Promise<Message> {
  for (let waited = 0; ; waited += 10) {
    const answer = answers.find((m) => m.id === id);
    if (answer !== undefined) return answer;
    if (waited > 10_000) throw new Error(`no answer to ${id}: ${JSON.stringify(answers)}`);
    await delay(10);
  }
}

test("$/cancelRequest with an integral float id cancels nothing, on both channels, in every float form; the integer cancels", async (t) => {
  const cancel = (id: unknown): Message => ({ jsonrpc: "2.0", method: "$/cancelRequest", params: { id } });
  for (const channel of ["data", "control"] as const) {
    const { worker, write, answers } = await channelWithWriter(t, channel);
    worker.onRequest("wait", async (params: unknown, { signal }) => {
      await delay((params as { ms: number }).ms, undefined, { signal });
      return "done";
    });
    worker.start();
    // Request 7 + i waits; the i-th float form of this channel names it as the float 7 + i.
    const forms = floatForms(cancel(SLOT), 7).filter((form) => form.channel === channel);
    for (const index of forms.keys()) {
      const id = 7 + index;
      write(written(channel, { jsonrpc: "2.0", id, method: "wait", params: { ms: 150 } }));
      const { bytes } = floatForms(cancel(SLOT), id).filter((form) => form.channel === channel)[index] as { bytes: Uint8Array };
      // A line holds no raw newline: the spaces around the float are others there.
      write(channel === "control" ? bytes.map((byte) => (byte === 0x0a ? 0x20 : byte)) : bytes);
    }
    for (const [index, { form }] of forms.entries()) {
      assert.deepEqual(await answerTo(answers, 7 + index), { jsonrpc: "2.0", id: 7 + index, result: "done" }, `${channel}: id ${7 + index} as ${form}`);
    }
    write(written(channel, { jsonrpc: "2.0", id: 100, method: "wait", params: { ms: 30_000 } }));
    write(written(channel, cancel(100)));
    assert.equal(((await answerTo(answers, 100)).error as Message | undefined)?.code, ErrorCodes.RequestCancelled, `${channel}: the integer cancels`);
  }
});
