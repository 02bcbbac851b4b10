/**
 * The `$/hello` verdict (PROTOCOL.md 7.4, decision D14): what the worker answers to a data
 * connection's first message, and whether the connection stays open. Pure code, driven by
 * `spec/vectors/handshake.json`; the data channel does the I/O.
 *
 * Order matters: the token is checked BEFORE the protocol, so that a peer without the token learns
 * nothing else, not even which protocols the worker speaks.
 */
import { timingSafeEqual } from "node:crypto";

import { ErrorCodes } from "../errors.js";
import { isInteger, isMap, type ClassifiedMessage, type RequestId } from "../jsonrpc/messages.js";
import type { WireError } from "../channel/handlers.js";

/** What the verdict depends on. */
export interface HelloInput {
  /** The message, classified; "undecodable" for a frame that did not decode. */
  readonly message: ClassifiedMessage | "undecodable";
  /** `params.protocol` was a float on the wire (`1.0`), which the decoded value cannot show. */
  readonly protocolIsFloat?: boolean;
  /** The first message on the connection (false: the connection is already authenticated). */
  readonly firstFrame: boolean;
  /** `ASPECT_IPC_TOKEN`. */
  readonly token: string;
  readonly supported: readonly number[];
  readonly workerId: string | null;
  readonly pid: number;
  /** Another connection is authenticated already. */
  readonly authenticatedElsewhere: boolean;
}

/** The answer (null: none) and what becomes of the connection. */
export interface HelloVerdict {
  readonly reply: { readonly id: RequestId | null; readonly result: unknown } | { readonly id: RequestId | null; readonly error: WireError } | null;
  readonly keepOpen: boolean;
  readonly authenticated: boolean;
}

const FIRST_MESSAGE = "unauthorized: the first message on a data connection must be a $/hello request";

/** Decides what a `$/hello` (or whatever came instead) gets. */
export function helloVerdict(input: HelloInput): HelloVerdict {
  const { message } = input;
  if (!input.firstFrame) {
    // An authenticated connection: a second $/hello request is refused, a notification ignored.
    if (message !== "undecodable" && message.kind === "request" && message.method === "$/hello") {
      return open({ id: message.id, error: { code: ErrorCodes.InvalidRequest, message: "Invalid Request: already authenticated" } });
    }
    return { reply: null, keepOpen: true, authenticated: true };
  }
  if (message === "undecodable" || message.kind !== "request") return refuse(null, ErrorCodes.Unauthorized, FIRST_MESSAGE);
  const { id } = message;
  if (message.method !== "$/hello") return refuse(id, ErrorCodes.Unauthorized, FIRST_MESSAGE);
  const params = message.params;
  if (!isMap(params) || !tokenMatches(params.token, input.token)) {
    return refuse(id, ErrorCodes.Unauthorized, "unauthorized: wrong or missing token");
  }
  const protocol = params.protocol;
  if (!isInteger(protocol) || input.protocolIsFloat === true) {
    return refuse(id, ErrorCodes.InvalidParams, `Invalid params: $/hello protocol must be an integer, got ${describe(protocol)}`);
  }
  if (!input.supported.some((version) => BigInt(version) === BigInt(protocol))) {
    return refuse(
      id,
      ErrorCodes.ProtocolVersionMismatch,
      `protocol version mismatch: worker speaks ${input.supported.join(", ")}, parent speaks ${String(protocol)}`,
      { supported: [...input.supported] },
    );
  }
  if (input.authenticatedElsewhere) return refuse(id, ErrorCodes.Unauthorized, "data channel already connected");
  const highest = Math.max(...input.supported);
  return { reply: { id, result: { protocol: highest, workerId: input.workerId, pid: input.pid } }, keepOpen: true, authenticated: true };
}

function refuse(id: RequestId | null, code: number, message: string, data?: unknown): HelloVerdict {
  const error: WireError = data === undefined ? { code, message } : { code, message, data };
  return { reply: { id, error }, keepOpen: false, authenticated: false };
}

function open(reply: { id: RequestId; error: WireError }): HelloVerdict {
  return { reply, keepOpen: true, authenticated: true };
}

/** Constant-time comparison over the bytes; a length difference (or a non-string) is a mismatch. */
function tokenMatches(candidate: unknown, token: string): boolean {
  const expected = Buffer.from(token, "utf8");
  const given = Buffer.from(typeof candidate === "string" ? candidate : "", "utf8");
  if (typeof candidate !== "string" || given.length !== expected.length) {
    // Same work as a comparison, then a mismatch: the time does not tell how close the guess was.
    timingSafeEqual(expected, expected);
    return false;
  }
  return timingSafeEqual(given, expected);
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "bigint") return String(value);
  if (value instanceof Uint8Array) return "binary";
  return JSON.stringify(value) ?? typeof value;
}
