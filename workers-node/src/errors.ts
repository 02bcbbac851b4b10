/**
 * Every error this SDK raises, in one place.
 *
 * Users catch these, never `Error` subclasses from Node (`ECONNRESET`, `EPIPE`...) or from the
 * MessagePack library: foreign errors are translated at exactly one boundary each (transports,
 * codecs). Errors that cross the wire are {@link RemoteError}s; everything else is local, and no
 * local error is a RemoteError (as vscode-jsonrpc keeps ResponseError apart from its own), even
 * those that carry a JSON-RPC `code` for mapping (RequestTimeout, RequestCancelled, ChannelClosed).
 */

/** JSON-RPC error codes used by aspect-ipc (PROTOCOL.md section 12). */
export const ErrorCodes = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  HandlerError: -32000,
  RequestTimeout: -32001,
  RequestCancelled: -32002,
  Unauthorized: -32003,
  ShuttingDown: -32004,
  MessageTooLarge: -32005,
  WorkerCrashed: -32006,
  ProtocolVersionMismatch: -32007,
  ChannelClosed: -32008,
  TooManyStreams: -32009,
  StreamProtocolError: -32010,
  StreamClosed: -32011,
} as const;

/** Base class of every error raised by this SDK. */
export class IpcError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The byte stream under a channel failed or is closed (socket reset, broken pipe, write after close). */
export class TransportError extends IpcError {}

/** The kinds of framing error, as named in the spec and the vectors. */
export type FramingErrorKind =
  | "frame_too_large"
  | "empty_frame"
  | "truncated"
  | "line_too_long"
  | "invalid_line";

/** A frame or line broke the framing rules (PROTOCOL.md sections 1 and 2). */
export class FramingError extends IpcError {
  /** Which rule was broken. */
  readonly kind: FramingErrorKind;
  /** For a size error: the frame's or line's size in bytes, when it is known exactly. */
  readonly size: number | undefined;
  /** For a size error: the limit it broke, in bytes. */
  readonly limit: number | undefined;

  constructor(kind: FramingErrorKind, message: string, sizes: { size?: number | undefined; limit?: number | undefined } = {}) {
    super(message);
    this.kind = kind;
    this.size = sizes.size;
    this.limit = sizes.limit;
  }
}

/**
 * A value could not be encoded, or bytes could not be decoded (PROTOCOL.md section 3). Raised on the
 * sending side before anything is written; on the receiving side the peer gets `-32700`.
 */
export class CodecError extends IpcError {
  /**
   * Where in the message the value that could not be encoded sits, JSONPath style from the
   * envelope (`$.params.rows[3].when`, `$["a b"]`); undefined when the failure has no place (a
   * decode error, a codec misused).
   */
  readonly path: string | undefined;

  constructor(message: string, options?: { cause?: unknown; path?: string | undefined }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.path = options?.path;
  }

  /**
   * @internal The id of the message that failed to decode, when the failure was not broken syntax
   * and the top level was a map with a string `method` and a string or integer `id` (PROTOCOL.md
   * 4.8): the `-32700` answer carries it. Undefined otherwise.
   */
  recoveredId: string | number | bigint | undefined;

  /**
   * @internal The id of an ANSWER that failed to decode, recovered the same way: the top level was
   * a map without `method`, with `result` or `error`, and a string or integer `id` (PROTOCOL.md
   * 4.8). The receiver fails its pending request with that id, if any, and sends nothing.
   */
  answerId: string | number | bigint | undefined;
}

/** A message broke JSON-RPC rules in a way that has no wire answer (an invalid response, misuse of the API). */
export class ProtocolError extends IpcError {}

/** A data path could not be computed (PROTOCOL.md section 6). */
export class PathError extends IpcError {
  /** `empty_name` or `directory_too_long` (the vectors' name). */
  readonly kind: "empty_name" | "directory_too_long";

  constructor(kind: "empty_name" | "directory_too_long", message: string) {
    super(message);
    this.kind = kind;
  }
}

/**
 * The worker cannot start: its environment is invalid or its data path is unusable. The high-level
 * {@link Worker} reports it on stderr and exits with code 2 (PROTOCOL.md sections 5 and 7.3).
 */
export class StartupError extends IpcError {}

/**
 * A JSON-RPC error that crosses the wire: an error response received from the peer, or one to send.
 *
 * Throw it from a handler to answer with your own `code` (and optional `data`); any other thrown
 * value (a local error included) is answered with `-32000` and `data.type` naming its type.
 * `request()` rejects with it when, and only when, the peer answers with an error.
 */
export class RemoteError extends IpcError {
  /** The JSON-RPC error code. */
  readonly code: number;
  /** The optional `data` member (any value the channel's codec can carry). */
  readonly data: unknown;

  constructor(code: number, message: string, data?: unknown) {
    super(message);
    if (!Number.isInteger(code)) {
      throw new TypeError(`RemoteError code must be an integer, got ${String(code)}`);
    }
    this.code = code;
    this.data = data;
  }
}

/**
 * A request of ours was abandoned because its timeout expired (local: nothing came from the peer).
 * `code` is `-32001`, for programs that map errors to codes; it is not a {@link RemoteError}.
 */
export class RequestTimeout extends IpcError {
  /** `-32001` (PROTOCOL.md 12). */
  readonly code: number = ErrorCodes.RequestTimeout;

  /** @param message what happened, when not the default `request <method> timed out after <timeoutMs> ms` */
  constructor(method: string, timeoutMs: number, message?: string) {
    super(message ?? `request ${method} timed out after ${timeoutMs} ms`);
  }
}

/**
 * A request was cancelled here: ours by its AbortSignal, or a peer's by `$/cancelRequest` (the
 * reason its handler's signal is aborted with). Local; `code` is `-32002`. The peer's own
 * `-32002` answers reach `request()` as a {@link RemoteError}.
 */
export class RequestCancelled extends IpcError {
  /** `-32002` (PROTOCOL.md 12). */
  readonly code: number = ErrorCodes.RequestCancelled;

  constructor(message = "request cancelled") {
    super(message);
  }
}

/**
 * The channel closed while a request was pending, or a message was sent on a closed channel.
 * Local only (`code` `-32008` never goes on the wire).
 */
export class ChannelClosed extends IpcError {
  /** `-32008` (PROTOCOL.md 12). */
  readonly code: number = ErrorCodes.ChannelClosed;

  constructor(message = "channel closed") {
    super(message);
  }
}

/** Describes any thrown value for a log line or an error message. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
