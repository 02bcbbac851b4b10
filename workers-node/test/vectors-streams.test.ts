/**
 * spec/vectors/streams.json (spec/vectors/README.md): every message case written as a peer sends it
 * (floats as floats: MessagePack float 64 on data, `4.0` on control), decoded by the channel's
 * codec and classified by the stream layer with what the decoder noted, and every scenario
 * replayed as each of its sides, the responder `w` through ResponderStreams and the requester `p`
 * through RequesterStreams (the state machines the channel runs), following the replay rule step
 * by step.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ErrorCodes,
  JsonCodec,
  MessagePackCodec,
  RemoteError,
  RequestCancelled,
  RequesterStreams,
  ResponderStreams,
  parseOpening,
  parseStreamMessage,
  type CallStreams,
  type RequestStreams,
} from "@aspect-ipc/worker";

import { decoding, type DecodingCodec } from "./helpers/decoding.js";
import { TAGGED_CHANNELS } from "./helpers/tagged-wire.js";
import { loadVectors, sameValue, show, untag } from "./helpers/vectors.js";

type Json = Record<string, unknown>;
interface Step {
  wire?: "p>w" | "w>p";
  message?: Json;
  at?: "p" | "w";
  app?: string;
  [member: string]: unknown;
}
interface StreamsFile {
  default_window: number;
  max_window: number;
  max_open_streams: number;
  messages: Array<{ id: string; message: Json; expect: Json }>;
  scenarios: Array<{ id: string; sides: string[]; in_window?: number; open_streams?: number; steps: Step[] }>;
}

const vectors = loadVectors<StreamsFile>("streams.json");

/** The channel's codec, for each channel a message case is sent on. */
const CODECS: Record<"data" | "control", DecodingCodec> = { data: decoding(new MessagePackCodec()), control: decoding(new JsonCodec()) };

/** The stream layer's verdict on one decoded message, told which stream members were floats, in the vectors' shape. */
function classify(message: Json, floatMembers: number): Json {
  if ("method" in message && "id" in message) {
    const opening = parseOpening(message.params, floatMembers);
    if (opening.kind === "not_stream") return { kind: "not_stream" };
    if (opening.kind === "invalid_open") return { kind: "invalid_open", code: ErrorCodes.InvalidParams, id: message.id };
    return { kind: "open", id: message.id, method: message.method, params: opening.params, ...(opening.out ? { out: opening.out } : {}), ...(opening.in ? { in: opening.in } : {}) };
  }
  if ("method" in message) {
    const parsed = parseStreamMessage(message.method as string, message.params, floatMembers) as Json;
    const { reason: _reason, ...rest } = parsed;
    return rest;
  }
  const error = message.error as Json;
  return { kind: "error_response", id: message.id, code: error.code, ...("data" in error ? { data: error.data } : {}) };
}

test("streams.json: message cases", async (t) => {
  assert.equal(vectors.default_window, 16);
  assert.equal(vectors.max_window, 1024);
  assert.equal(vectors.max_open_streams, 64);
  assert.ok(vectors.messages.length > 0);
  for (const vector of vectors.messages) {
    await t.test(vector.id, () => {
      const expected = untag(vector.expect);
      let sent = 0;
      for (const { name, write } of TAGGED_CHANNELS) {
        const bytes = write(vector.message);
        if (bytes === null) continue;
        const { value, floatMembers } = CODECS[name].decodeMessage(bytes);
        const actual = classify(value as Json, floatMembers);
        assert.ok(sameValue(actual, expected), `on ${name}: classified ${show(actual)}, expected ${show(expected)}`);
        sent++;
      }
      assert.ok(sent > 0, "the case has a form on some channel");
    });
  }
});

/** Whether a promise is still pending after the microtasks and one macrotask turn. */
async function settled<T>(promise: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown } | null> {
  let outcome: { ok: true; value: T } | { ok: false; error: unknown } | null = null;
  promise.then(
    (value) => (outcome = { ok: true, value }),
    (error: unknown) => (outcome = { ok: false, error }),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return outcome;
}

/** Compares an emitted message with the vector's: errors by code and data, and by message when the application wrote it. */
function sameMessage(actual: Json, expected: Json, appMessages: Set<string>): boolean {
  if ("error" in expected && "error" in actual) {
    const a = actual.error as Json;
    const e = expected.error as Json;
    if (!sameValue(actual.id, expected.id) || a.code !== e.code) return false;
    if ("data" in e && !sameValue(a.data, e.data)) return false;
    return !appMessages.has(e.message as string) || a.message === e.message;
  }
  return sameValue(actual, expected);
}

/** Replays one scenario as the responder `w`. */
async function replayResponder(scenario: StreamsFile["scenarios"][number]): Promise<void> {
  const emitted: Json[] = [];
  const answered = new Set<unknown>();
  const cancelled = new Set<unknown>();
  const appMessages = new Set<string>();
  for (const step of scenario.steps) if ((step.app === "fail" || step.app === "abort") && typeof step.message === "string") appMessages.add(step.message);
  const machine = new ResponderStreams("data", {
    emit: (method, params) => {
      emitted.push({ jsonrpc: "2.0", method, params });
      return Promise.resolve();
    },
    failRequest: (id, error) => {
      if (answered.has(id)) return;
      answered.add(id);
      emitted.push({ jsonrpc: "2.0", id, error: { code: error.code, message: error.message, data: error.data } });
    },
  });
  const answer = (id: unknown, body: Json): void => {
    if (answered.has(id)) return;
    answered.add(id);
    machine.finish(id as string);
    emitted.push({ jsonrpc: "2.0", id, ...body });
  };
  let current: { id: unknown; streams: RequestStreams } | null = null;
  let lastError: unknown = null;
  const feed = (message: Json): void => {
    if ("method" in message && "id" in message) {
      const opened = machine.openRequest(message.id as string, message.method as string, message.params, scenario.in_window ?? 16);
      if (opened.kind === "refused") emitted.push({ jsonrpc: "2.0", id: message.id, error: opened.error });
      else if (opened.kind === "open") current = { id: message.id, streams: opened.streams };
    } else if (message.method === "$/cancelRequest") {
      const id = (message.params as Json).id;
      cancelled.add(id);
      machine.cancel(id as string, new RequestCancelled());
    } else {
      machine.receive(message.method as string, message.params);
    }
  };
  for (let index = 0; index < (scenario.open_streams ?? 0); index++) {
    feed({ jsonrpc: "2.0", id: 1001 + index, method: "countTo", params: { n: 1, size: 0, "$/stream": { out: { window: 16 } } } });
  }
  assert.deepEqual(emitted, [], "opening requests emit nothing");
  for (const [index, step] of scenario.steps.entries()) {
    const where = `step ${index} ${JSON.stringify(step)}`;
    if (step.wire === "p>w") feed(untag(step.message) as Json);
    else if (step.wire === "w>p") {
      const got = emitted.shift();
      assert.ok(got !== undefined, `${where}: nothing emitted`);
      assert.ok(sameMessage(got, untag(step.message) as Json, appMessages), `${where}: emitted ${show(got)}`);
    } else if (step.at === "w") {
      assert.ok(current !== null, `${where}: no request`);
      const { id, streams } = current as { id: unknown; streams: RequestStreams };
      const code = step.code as number;
      switch (step.app) {
        case "send":
          assert.ok(streams.output && streams.output.available > 0, `${where}: no credit`);
          streams.output.send(untag(step.value)).catch(() => undefined);
          break;
        case "send_blocks":
          assert.equal(streams.output?.available, 0, where);
          break;
        case "send_fails": {
          const outcome = await settled(streams.output!.send(0));
          assert.ok(outcome !== null && !outcome.ok && (outcome.error as RemoteError).code === code, `${where}: ${show(outcome)}`);
          lastError = (outcome as { error: unknown }).error;
          break;
        }
        case "take":
        case "end":
        case "fails": {
          const outcome = await settled(streams.input!.next());
          assert.ok(outcome !== null, `${where}: the read waits`);
          if (step.app === "take") assert.ok(outcome.ok && outcome.value.done !== true && sameValue(outcome.value.value, untag(step.value)), `${where}: ${show(outcome)}`);
          else if (step.app === "end") assert.ok(outcome.ok && outcome.value.done === true, `${where}: ${show(outcome)}`);
          else {
            assert.ok(!outcome.ok && (outcome.error as RemoteError).code === code, `${where}: ${show(outcome)}`);
            lastError = outcome.error;
          }
          break;
        }
        case "return":
          answer(id, { result: untag(step.result) });
          break;
        case "fail":
          answer(id, { error: { code, message: step.message } });
          break;
        case "propagate": {
          const error = lastError as RemoteError;
          const wire = cancelled.has(id) ? { code: ErrorCodes.RequestCancelled, message: "request cancelled" } : { code: error.code, message: error.message, ...(error.data === undefined ? {} : { data: error.data }) };
          answer(id, { error: wire });
          break;
        }
        default:
          assert.fail(`${where}: unknown responder action`);
      }
    }
  }
  assert.deepEqual(emitted, [], "nothing more emitted");
}

test("streams.json: scenarios replayed as the responder (w)", async (t) => {
  const responder = vectors.scenarios.filter((scenario) => scenario.sides.includes("w"));
  assert.ok(responder.length >= 10);
  for (const scenario of responder) await t.test(scenario.id, () => replayResponder(scenario));
});

/** Replays one scenario as the requester `p`; `break` does what the channel does when the caller gives up. */
async function replayRequester(scenario: StreamsFile["scenarios"][number]): Promise<void> {
  const emitted: Json[] = [];
  /** How each request of ours ended: its response, or the failure that completed it first. */
  const outcomes = new Map<unknown, { ok: true; result: unknown } | { ok: false; code: number }>();
  const machine = new RequesterStreams("data", {
    emit: (method, params) => {
      emitted.push({ jsonrpc: "2.0", method, params });
      return Promise.resolve();
    },
    failCall: (id, error) => {
      if (!outcomes.has(id)) outcomes.set(id, { ok: false, code: error.code });
    },
  });
  let call: CallStreams | null = null;
  const feed = (message: Json): void => {
    if ("result" in message || "error" in message) {
      const error = "error" in message ? (message.error as Json) : null;
      const remote = error === null ? undefined : new RemoteError(error.code as number, error.message as string, error.data);
      if (!machine.answered(message.id as number, remote) && !outcomes.has(message.id)) {
        outcomes.set(message.id, remote === undefined ? { ok: true, result: message.result } : { ok: false, code: remote.code });
      }
    } else {
      machine.receive(message.method as string, message.params);
    }
  };
  for (const [index, step] of scenario.steps.entries()) {
    const where = `step ${index} ${JSON.stringify(step)}`;
    if (step.wire === "w>p") feed(untag(step.message) as Json);
    else if (step.wire === "p>w") {
      const got = emitted.shift();
      assert.ok(got !== undefined, `${where}: nothing emitted`);
      assert.ok(sameMessage(got, untag(step.message) as Json, new Set()), `${where}: emitted ${show(got)}`);
    } else if (step.at === "p") {
      const code = step.code as number;
      if (step.app === "open") {
        const out = step.out as { window: number } | undefined;
        const descriptor = { ...(out === undefined ? {} : { out }), ...("in" in step ? { in: {} } : {}) };
        emitted.push({ jsonrpc: "2.0", id: step.id, method: step.method, params: { ...(untag(step.params) as Json), "$/stream": descriptor } });
        call = machine.openCall(step.id as number, out?.window, "in" in step);
        continue;
      }
      assert.ok(call !== null, `${where}: no request`);
      const current = call as CallStreams;
      switch (step.app) {
        case "send":
          assert.ok(current.input && current.input.available > 0, `${where}: no credit`);
          current.input.send(untag(step.value)).catch(() => undefined);
          break;
        case "send_blocks":
          assert.equal(current.input?.available, 0, where);
          break;
        case "send_fails": {
          const outcome = await settled(current.input!.send(0));
          assert.ok(outcome !== null && !outcome.ok && (outcome.error as RemoteError).code === code, `${where}: ${show(outcome)}`);
          break;
        }
        case "close":
          machine.endInput(current);
          break;
        case "abort":
          machine.endInput(current, { code, message: step.message as unknown as string });
          break;
        case "break":
          if (!outcomes.has(current.id)) {
            outcomes.set(current.id, { ok: false, code: ErrorCodes.RequestCancelled });
            emitted.push({ jsonrpc: "2.0", method: "$/cancelRequest", params: { id: current.id } });
            machine.abandon(current.id, new RequestCancelled());
          }
          break;
        case "take":
        case "end":
        case "fails": {
          if (step.app === "fails" && step.dir === undefined) {
            const outcome = outcomes.get(current.id);
            assert.ok(outcome !== undefined && !outcome.ok && outcome.code === code, `${where}: ${show(outcome)}`);
            break;
          }
          const outcome = await settled(current.output!.next());
          assert.ok(outcome !== null, `${where}: the read waits`);
          if (step.app === "take") assert.ok(outcome.ok && outcome.value.done !== true && sameValue(outcome.value.value, untag(step.value)), `${where}: ${show(outcome)}`);
          else if (step.app === "end") {
            assert.ok(outcome.ok && outcome.value.done === true, `${where}: ${show(outcome)}`);
            const answer = outcomes.get(current.id);
            assert.ok(answer?.ok === true && sameValue(answer.result, untag(step.result)), `${where}: result ${show(answer)}`);
          } else assert.ok(!outcome.ok && (outcome.error as RemoteError).code === code, `${where}: ${show(outcome)}`);
          break;
        }
        case "result": {
          const answer = outcomes.get(current.id);
          assert.ok(answer?.ok === true && sameValue(answer.result, untag(step.result)), `${where}: result ${show(answer)}`);
          break;
        }
        default:
          assert.fail(`${where}: unknown requester action`);
      }
    }
  }
  assert.deepEqual(emitted, [], "nothing more emitted");
}

test("streams.json: scenarios replayed as the requester (p)", async (t) => {
  const requester = vectors.scenarios.filter((scenario) => scenario.sides.includes("p"));
  assert.ok(requester.length >= 10);
  for (const scenario of requester) await t.test(scenario.id, () => replayRequester(scenario));
});
