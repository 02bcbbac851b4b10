/**
 * The JSON-RPC 2.0 profile of aspect-ipc: builds outgoing messages, classifies incoming ones.
 * Pure code: values in, values out.
 */
import { ProtocolError } from "../errors.js";
import { classifyMessage, isMap, type ClassifiedMessage, type ClassifyOptions, type Params, type RequestId } from "./messages.js";

/** An outgoing message, ready for a codec. */
export type OutgoingMessage = Record<string, unknown>;

/** The JSON-RPC 2.0 protocol object handed to {@link ChannelBuilder.withProtocol}. */
export class JsonRpcProtocol {
  /** Classifies a decoded value (PROTOCOL.md 4.2); `options` says what the decoder knew. */
  classify(value: unknown, options?: ClassifyOptions): ClassifiedMessage {
    return classifyMessage(value, options);
  }

  /** A request. `params` may be omitted; otherwise it must be an array or a map. */
  request(id: RequestId, method: string, params?: unknown): OutgoingMessage {
    const message: OutgoingMessage = { jsonrpc: "2.0", id, method };
    if (params !== undefined) message.params = checkParams(method, params);
    return message;
  }

  /** A notification (no id). */
  notification(method: string, params?: unknown): OutgoingMessage {
    const message: OutgoingMessage = { jsonrpc: "2.0", method };
    if (params !== undefined) message.params = checkParams(method, params);
    return message;
  }

  /** A successful response; `undefined` results are sent as null. */
  response(id: RequestId, result: unknown): OutgoingMessage {
    return { jsonrpc: "2.0", id, result: result === undefined ? null : result };
  }

  /** An error response; `data` is left out when undefined. */
  errorResponse(id: RequestId | null, code: number, message: string, data?: unknown): OutgoingMessage {
    const error: Record<string, unknown> = { code, message };
    if (data !== undefined) error.data = data;
    return { jsonrpc: "2.0", id, error };
  }
}

function checkParams(method: string, params: unknown): Params {
  if (Array.isArray(params) || isMap(params)) return params;
  throw new ProtocolError(
    `params of ${method} must be an array or a map (JSON-RPC 2.0), got ${params === null ? "null" : typeof params}; ` +
      "wrap the value, e.g. {value: ...}",
  );
}
