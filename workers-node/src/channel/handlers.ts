/**
 * Handler types, the handler table, and how a handler's failure becomes a wire error
 * (PROTOCOL.md 4.5).
 */
import { ErrorCodes, ProtocolError, RemoteError } from "../errors.js";
import type { RequestId } from "../jsonrpc/messages.js";
import { checkDuration } from "../timeouts.js";
import type { StreamCall, StreamItems, StreamOptions } from "../streams/call.js";

/** Options of an outgoing request. */
export interface RequestOptions {
  /**
   * Aborting it abandons the request: the promise rejects with RequestCancelled, and `$/cancelRequest`
   * is sent, unless the request was still waiting to be written: then it is never sent.
   */
  signal?: AbortSignal | undefined;
  /**
   * Abandons the request after this many milliseconds, counted from the call: the promise rejects
   * with RequestTimeout, whose message says whether the request was sent. One still waiting to be
   * written (a peer that does not read) is taken back and never sent; else `$/cancelRequest` follows.
   * A number >= 0; Infinity (or absent) is no limit, and any finite value is honoured, however
   * large. Anything else rejects the call with a TypeError (not a number) or a RangeError (NaN,
   * negative), and nothing is sent.
   */
  timeoutMs?: number | undefined;
  /**
   * Sends these items as the request's input stream (PROTOCOL.md 13), read lazily as the peer
   * grants credit, then `$/stream/end` (`$/stream/error` if the iterable throws). The params must
   * then be an object (or absent). The promise resolves with the result once the peer has answered.
   */
  input?: StreamItems | undefined;
}

/**
 * Checks the options of a request (or stream) where they are given, before anything is sent.
 * @throws {TypeError} or {RangeError} naming the option, for a `timeoutMs` that is not a number >= 0.
 */
export function checkRequestOptions(options: RequestOptions): void {
  if (options.timeoutMs !== undefined) checkDuration("timeoutMs", options.timeoutMs);
}

/**
 * What a call that cannot be made (no data connection) fails with: `reason`, unless an option is
 * bad, which is raised as it would be with a connection (the caller's bug does not come and go
 * with the parent).
 */
export function refusedCall(options: RequestOptions | undefined, reason: Error): Error {
  try {
    if (options !== undefined) checkRequestOptions(options);
  } catch (error) {
    return error as Error;
  }
  return reason;
}

/** Something that can call and notify the peer: a {@link Channel}, or the worker's `control` / `data`. */
export interface RpcPeer {
  /**
   * Sends a request and resolves with the peer's result.
   * @throws {RemoteError} (rejects) when the peer answers with an error; {@link RequestTimeout},
   *   {@link RequestCancelled}, {@link ChannelClosed} when the request is abandoned; CodecError,
   *   FramingError or ProtocolError (nothing sent) when the request cannot be encoded; a
   *   ProtocolError when the peer's answer is invalid or cannot be decoded (PROTOCOL.md 4.3, 4.8).
   */
  request<R = unknown>(method: string, params?: unknown, options?: RequestOptions): Promise<R>;
  /**
   * Calls `method` with an output stream (PROTOCOL.md 13): `for await (const item of peer.stream(...))`,
   * then `call.result` is the final value. `options.window` (1 to 1024, default 16) bounds the items
   * on their way or buffered; `options.input` opens an input stream too. Breaking out of the loop
   * cancels the request. The request is sent when the loop starts.
   */
  stream(method: string, params?: Record<string, unknown>, options?: StreamOptions): StreamCall;
  /** Sends a notification; resolves once it was handed to the transport. */
  notify(method: string, params?: unknown): Promise<void>;
}

/** What a request handler gets besides its params. */
export interface RequestContext {
  /** Aborted when the peer sends `$/cancelRequest` for this request, or the worker shuts down. */
  readonly signal: AbortSignal;
  /** The request's id. */
  readonly id: RequestId;
  /** The method called. */
  readonly method: string;
  /** The channel the request came in on: call or notify the peer through it. */
  readonly peer: RpcPeer;
  /**
   * The request's input stream (PROTOCOL.md 13): `for await (const item of context.input)`. Reading
   * raises the producer's `$/stream/error`, `-32002` once cancelled, `-32010` on a protocol error.
   * @throws {RemoteError} `-32602` when the request opened no input stream.
   */
  readonly input: AsyncIterable<unknown>;
}

/** What a notification handler gets besides its params. */
export interface NotificationContext {
  readonly method: string;
  /** The channel the notification came in on. */
  readonly peer: RpcPeer;
}

/**
 * Handles one request. `params` is the request's params (an array or a map), or undefined when it
 * had none. Return (or resolve) the result; `undefined` is sent as null. Throw a {@link RemoteError}
 * to answer with your own code; any other throw is answered `-32000` with `data.type`.
 *
 * Streams (PROTOCOL.md 13): a handler that is an async generator (or returns an AsyncIterable)
 * sends its yields as the request's output stream, each once the requester granted credit, and
 * its return value is the result; it answers `-32602` when the request opened no output stream.
 */
export type RequestHandler<P = any, R = unknown> = (params: P, context: RequestContext) => R | Promise<R>;

/** Handles one notification; a throw is reported locally (notifications are never answered). */
export type NotificationHandler<P = any> = (params: P, context: NotificationContext) => void | Promise<void>;

/** Returned by registrations: `dispose()` removes the handler. */
export interface Disposable {
  dispose(): void;
}

/** Options of a request handler, given where it is registered. */
export interface RequestHandlerOptions {
  /**
   * The handler's input window (PROTOCOL.md 13.3): how many items of an input stream its request
   * may have buffered or on their way, granted as credit at once when a request opens one. An
   * integer from 1 to 1024; 16 when absent. Anything else throws a RangeError naming the handler.
   */
  readonly inputWindow?: number | undefined;
}

/** Where handlers are registered: a channel, or both channels of a worker. */
export interface HandlerTarget {
  /** Registers (or replaces) the handler for requests to `method`, with its options. */
  onRequest<P = unknown, R = unknown>(method: string, handler: RequestHandler<P, R>, options?: RequestHandlerOptions): Disposable;
  /** Registers (or replaces) the handler for notifications of `method`. */
  onNotification<P = unknown>(method: string, handler: NotificationHandler<P>): Disposable;
}

/** The handler table (method → handler) of one channel, or shared by the successive connections of the data channel. */
export class HandlerTable implements HandlerTarget {
  private readonly requests = new Map<string, RequestHandler>();
  private readonly notifications = new Map<string, NotificationHandler>();
  private readonly inputWindows = new Map<string, number>();

  onRequest<P = unknown, R = unknown>(method: string, handler: RequestHandler<P, R>, options?: RequestHandlerOptions): Disposable {
    checkMethod(method);
    const window = checkInputWindow(method, options?.inputWindow);
    this.requests.set(method, handler as RequestHandler);
    if (window === undefined) this.inputWindows.delete(method);
    else this.inputWindows.set(method, window);
    return {
      dispose: () => {
        if (this.requests.get(method) !== handler) return;
        this.requests.delete(method);
        this.inputWindows.delete(method);
      },
    };
  }

  /** The input window `method`'s handler was registered with, if any (the default applies otherwise). */
  inputWindow(method: string): number | undefined {
    return this.inputWindows.get(method);
  }

  onNotification<P = unknown>(method: string, handler: NotificationHandler<P>): Disposable {
    checkMethod(method);
    this.notifications.set(method, handler as NotificationHandler);
    return { dispose: () => this.notifications.get(method) === handler && this.notifications.delete(method) };
  }

  /** The handler for requests to `method`, if any. */
  requestHandler(method: string): RequestHandler | undefined {
    return this.requests.get(method);
  }

  /** The handler for notifications of `method`, if any. */
  notificationHandler(method: string): NotificationHandler | undefined {
    return this.notifications.get(method);
  }
}

/** Whether `method` is reserved for the protocol (PROTOCOL.md section 11). */
export function isReservedMethod(method: string): boolean {
  return method.startsWith("$/");
}

function checkInputWindow(method: string, window: unknown): number | undefined {
  if (window === undefined) return undefined;
  if (typeof window !== "number" || !Number.isInteger(window) || window < 1 || window > 1024) {
    throw new RangeError(`handler ${JSON.stringify(method)}: inputWindow must be an integer from 1 to 1024 (default 16), not ${String(window)}`);
  }
  return window;
}

function checkMethod(method: string): void {
  if (typeof method !== "string" || method === "") {
    throw new ProtocolError("a method name must be a non-empty string");
  }
  if (isReservedMethod(method)) {
    throw new ProtocolError(`cannot register a handler for ${method}: method names starting with "$/" are reserved for the protocol`);
  }
}

/** The error member a failed handler is answered with. */
export interface WireError {
  readonly code: number;
  readonly message: string;
  readonly data?: unknown;
}

/** What a channel does with a failed request handler (PROTOCOL.md 4.10). */
export interface HandlerErrorPolicy {
  /** Whether a `-32000` carries `data.traceback` (the error's `stack`); off with `ASPECT_IPC_TRACEBACKS=0`. */
  sendTraceback: boolean;
  /** Called with the method and the failure when it is answered -32000 (the worker writes it to stderr: `logHandlerErrors`). */
  onFailure?: ((method: string, error: unknown) => void) | undefined;
}

/**
 * Maps a handler's failure to its wire error: RemoteError keeps its code and data, anything else is
 * -32000 with `data: {type, traceback}` (`traceback`: the error's `stack`, when `sendTraceback`).
 * Lone surrogates in the message, the type and the traceback become U+FFFD ({@link unicodeText}).
 */
export function errorToWire(error: unknown, sendTraceback = true): WireError {
  // The text built here is made Unicode; a typed error's `data` is the handler's own and is left
  // alone: if it cannot be encoded, the outbox answers -32603 (PROTOCOL.md 4.9).
  if (error instanceof RemoteError) {
    const message = unicodeText(error.message);
    return error.data === undefined ? { code: error.code, message } : { code: error.code, message, data: error.data };
  }
  if (error instanceof Error) {
    const type = unicodeText(errorTypeName(error));
    const data = sendTraceback && typeof error.stack === "string" ? { type, traceback: unicodeText(error.stack) } : { type };
    return { code: ErrorCodes.HandlerError, message: failureText(String(error.message), type), data };
  }
  const type = typeof error;
  return { code: ErrorCodes.HandlerError, message: failureText(String(error), type), data: { type } };
}

/** A -32000's message: the failure's text, or its type when it has none (`new Error()`, `throw ""`): never empty (PROTOCOL.md 4.10). */
function failureText(text: string, type: string): string {
  return text === "" ? type : unicodeText(text);
}

/**
 * `text` with each lone UTF-16 surrogate replaced by U+FFFD. A JavaScript string may hold one
 * (`"😀".slice(0, 1)`), which no codec sends (PROTOCOL.md 3.4): the error response built for a
 * handler's failure is made Unicode this way, so that the failure still reaches the caller with
 * its type and stack instead of going unanswered (PROTOCOL.md 4.10, "Text that is not Unicode").
 */
export function unicodeText(text: string): string {
  return text.toWellFormed();
}

function errorTypeName(error: Error): string {
  const constructorName = (error.constructor as { name?: unknown } | undefined)?.name;
  // A class name ("TypeError", "ValidationError"), unless a plain Error was given a custom `name`.
  if (typeof constructorName === "string" && constructorName !== "" && constructorName !== "Error") return constructorName;
  return typeof error.name === "string" && error.name !== "" ? error.name : "Error";
}
