/**
 * The shapes of streams on the wire (PROTOCOL.md 13.1, 13.2): the `$/stream` descriptor of an
 * opening request and the `$/stream/*` notifications. Pure code: values in, verdicts out.
 *
 * `window`, `stream`, `seq`, `add` and an error's `code` are integers, and `4.0` is a float (3.1),
 * though a decoded JavaScript number cannot show it: the decoders note which of them were floats
 * on the wire (`floatMembers`, bits of `FloatMember`), and such a member is read here as `FLOAT`,
 * a wrong type like any other: `seq: 0.0` is malformed as `seq: "0"` is, `window: 4.0` refused as
 * `window: "4"` is, `code: -32000.0` in a `$/stream/error` malformed, and `stream: 7.0` names no
 * stream, as `stream: null` does.
 */
import { FloatMember } from "../codecs/float-members.js";
import { ErrorCodes } from "../errors.js";
import { isInteger, isMap, isRequestId, type RequestId } from "../jsonrpc/messages.js";

/** The reserved params member that opens streams. */
export const STREAM_MEMBER = "$/stream";
/** Default window (items) of a consumer. */
export const DEFAULT_WINDOW = 16;
/** Largest window, and largest credit a producer accepts. */
export const MAX_WINDOW = 1024;
/** Streams opened by the peer a side accepts per channel (13.8). */
export const MAX_OPEN_STREAMS = 64;

/** A stream's direction, relative to its request: `out` responder → requester, `in` the reverse. */
export type StreamDir = "out" | "in";

/** What an opening request asks for. */
export type Opening =
  | { readonly kind: "not_stream" }
  | { readonly kind: "invalid_open"; readonly reason: string }
  | { readonly kind: "open"; readonly params: Record<string, unknown>; readonly out?: { window: number }; readonly in?: Record<string, never> };

const NOT_STREAM: Opening = { kind: "not_stream" };

/** Stands for a member written as a float: neither an integer nor a string. */
const FLOAT = Symbol("float");

/**
 * Reads the `$/stream` descriptor of a request's params (13.1).
 * @param floatMembers bits of `FloatMember`: whether the decoder saw `window` written as a float
 *   (0, the default, for params that did not come from the wire).
 */
export function parseOpening(params: unknown, floatMembers = 0): Opening {
  if (!isMap(params) || !Object.prototype.hasOwnProperty.call(params, STREAM_MEMBER)) return NOT_STREAM;
  const { [STREAM_MEMBER]: descriptor, ...rest } = params;
  const invalid = (reason: string): Opening => ({ kind: "invalid_open", reason });
  if (!isMap(descriptor)) return invalid("$/stream must be a map");
  const members = Object.keys(descriptor);
  if (members.length === 0) return invalid('$/stream must hold "out", "in" or both');
  const unknown = members.find((member) => member !== "out" && member !== "in");
  if (unknown !== undefined) return invalid(`$/stream has an unknown member ${JSON.stringify(unknown)}`);
  let out: { window: number } | undefined;
  if ("out" in descriptor) {
    const spec = descriptor.out;
    const window = !isMap(spec) ? undefined : (floatMembers & FloatMember.window) === 0 ? spec.window : FLOAT;
    if (!isMap(spec) || typeof window !== "number" || !Number.isInteger(window) || window < 1 || window > MAX_WINDOW) {
      return invalid(`$/stream.out.window must be an integer from 1 to ${MAX_WINDOW}`);
    }
    const extra = Object.keys(spec).find((member) => member !== "window");
    if (extra !== undefined) return invalid(`$/stream.out has an unknown member ${JSON.stringify(extra)}`);
    out = { window };
  }
  if ("in" in descriptor && (!isMap(descriptor.in) || Object.keys(descriptor.in).length > 0)) return invalid("$/stream.in must be an empty map");
  return { kind: "open", params: rest, ...(out === undefined ? {} : { out }), ...("in" in descriptor ? { in: {} } : {}) };
}

/** A `$/stream/*` notification, classified (13.2, 13.5). */
export type StreamMessage =
  | { readonly kind: "item"; readonly stream: RequestId; readonly dir: StreamDir; readonly seq: number; readonly value: unknown }
  | { readonly kind: "credit"; readonly stream: RequestId; readonly dir: StreamDir; readonly add: number }
  | { readonly kind: "end"; readonly stream: RequestId; readonly dir: StreamDir }
  | { readonly kind: "error"; readonly stream: RequestId; readonly dir: StreamDir; readonly code: number; readonly message: string; readonly data?: unknown }
  | { readonly kind: "malformed"; readonly stream: RequestId; readonly dir: StreamDir; readonly reason: string }
  | { readonly kind: "unnamed" };

/** Whether `method` is one of the stream notifications. */
export function isStreamMethod(method: string): boolean {
  return method.startsWith("$/stream/");
}

/**
 * Classifies a `$/stream/*` notification's params.
 * @param floatMembers bits of `FloatMember`: which of `stream`, `seq`, `add` and `error.code` the
 *   decoder saw written as floats (0, the default, for params that did not come from the wire).
 */
export function parseStreamMessage(method: string, params: unknown, floatMembers = 0): StreamMessage {
  if (!isMap(params)) return { kind: "unnamed" };
  const stream = (floatMembers & FloatMember.stream) === 0 ? params.stream : FLOAT;
  const dir = params.dir;
  if (!isRequestId(stream) || (dir !== "out" && dir !== "in")) return { kind: "unnamed" };
  // No closures here (one per message would be made): every item and credit passes through.
  switch (method) {
    case "$/stream/item": {
      const seq = (floatMembers & FloatMember.seq) === 0 ? params.seq : FLOAT;
      if (typeof seq !== "number" || !Number.isInteger(seq) || seq < 0) return malformed(stream, dir, "seq must be an integer ≥ 0");
      if (!Object.prototype.hasOwnProperty.call(params, "value")) return malformed(stream, dir, "an item needs a value");
      return { kind: "item", stream, dir, seq, value: params.value };
    }
    case "$/stream/credit": {
      const add = (floatMembers & FloatMember.add) === 0 ? params.add : FLOAT;
      if (typeof add !== "number" || !Number.isInteger(add) || add < 1) return malformed(stream, dir, "add must be an integer ≥ 1");
      return { kind: "credit", stream, dir, add };
    }
    case "$/stream/end":
      if (dir !== "in") return malformed(stream, dir, "$/stream/end is sent for input streams only");
      return { kind: "end", stream, dir };
    case "$/stream/error": {
      if (dir !== "in") return malformed(stream, dir, "$/stream/error is sent for input streams only");
      const error = params.error;
      if (!isMap(error)) return malformed(stream, dir, "error must be a map with an integer code and a string message");
      const wireCode = (floatMembers & FloatMember.streamErrorCode) === 0 ? error.code : FLOAT;
      if (!isInteger(wireCode) || typeof error.message !== "string") {
        return malformed(stream, dir, "error must be a map with an integer code and a string message");
      }
      const code = Number(wireCode);
      return !Object.prototype.hasOwnProperty.call(error, "data")
        ? { kind: "error", stream, dir, code, message: error.message }
        : { kind: "error", stream, dir, code, message: error.message, data: error.data };
    }
    default:
      return { kind: "unnamed" };
  }
}

function malformed(stream: RequestId, dir: StreamDir, reason: string): StreamMessage {
  return { kind: "malformed", stream, dir, reason };
}

/** The `-32009` answer to an opening request over the limit (13.8). */
export function tooManyStreams(channel: string, open: number): { code: number; message: string; data: { limit: number } } {
  return {
    code: ErrorCodes.TooManyStreams,
    message: `too many open streams on ${channel}: ${open} open, limit ${MAX_OPEN_STREAMS}`,
    data: { limit: MAX_OPEN_STREAMS },
  };
}
