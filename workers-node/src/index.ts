/**
 * @aspect-ipc/worker: the Node.js worker SDK of aspect-ipc.
 *
 * Most programs need only {@link Worker}. The building blocks below it (framing, codecs, protocol,
 * transports, channels) are exported for programs that compose their own.
 */

// The worker: control on stdio, data on a Unix socket, handshake, shutdown.
export { Worker } from "./worker/worker.js";
export type { WorkerOptions } from "./worker/worker.js";
export type { WorkerHooks, ShutdownReason } from "./worker/hooks.js";
export type { WorkerEndpoint } from "./worker/endpoint.js";

// Channels and handlers.
export { Channel } from "./channel/channel.js";
export type { ChannelParts } from "./channel/channel.js";
export { ChannelBuilder } from "./channel/builder.js";
export type {
  Disposable,
  HandlerErrorPolicy,
  HandlerTarget,
  NotificationContext,
  NotificationHandler,
  RequestContext,
  RequestHandler,
  RequestHandlerOptions,
  RequestOptions,
  RpcPeer,
} from "./channel/handlers.js";

// Streams (PROTOCOL.md 13): the responder's sans-IO state machine and the wire shapes.
export { ResponderStreams, RequestStreams } from "./streams/responder.js";
export type { OpenResult, ResponderOutput } from "./streams/responder.js";
export { StreamConsumer, StreamProducer } from "./streams/endpoints.js";
export { StreamCall } from "./streams/call.js";
export type { StreamItems, StreamOptions } from "./streams/call.js";
export { RequesterStreams, CallStreams } from "./streams/requester.js";
export type { RequesterOutput } from "./streams/requester.js";
export type { Emit } from "./streams/endpoints.js";
export { DEFAULT_WINDOW, MAX_OPEN_STREAMS, MAX_WINDOW, isStreamMethod, parseOpening, parseStreamMessage } from "./streams/wire.js";
// Which of the protocol's integer members a decoder saw written as floats (3.1): parseOpening and
// parseStreamMessage take these bits.
export { FloatMember } from "./codecs/float-members.js";
export type { Opening, StreamDir, StreamMessage } from "./streams/wire.js";

// Transports.
export { TransportFactory } from "./transports/factory.js";
export { PipeServer } from "./transports/pipe-server.js";
export type { PipeServerOptions } from "./transports/pipe-server.js";
export type { Transport, TransportSink } from "./transports/types.js";

// Framing.
export { LengthPrefixedFraming } from "./framing/length-prefixed.js";
export type { LengthPrefixedFramingOptions } from "./framing/length-prefixed.js";
export { LineDelimitedFraming } from "./framing/line-delimited.js";
export type { LineDelimitedFramingOptions } from "./framing/line-delimited.js";
export type { Framing, FrameDecoder, FrameEvent } from "./framing/types.js";

// Codecs.
export { JsonCodec } from "./codecs/json.js";
export { MessagePackCodec } from "./codecs/msgpack.js";
export type { Codec, CodecOptions, DecodeHook, EncodeHook } from "./codecs/types.js";

// JSON-RPC.
export { JsonRpcProtocol } from "./jsonrpc/protocol.js";
export type { OutgoingMessage } from "./jsonrpc/protocol.js";
export type { ClassifiedMessage, ClassifyOptions, Params, RequestId } from "./jsonrpc/messages.js";

// Paths.
export { PipePath } from "./paths.js";
export type { ForModuleOptions, PathPlatform } from "./paths.js";

// Errors and constants.
export {
  ChannelClosed,
  CodecError,
  ErrorCodes,
  FramingError,
  IpcError,
  PathError,
  ProtocolError,
  RemoteError,
  RequestCancelled,
  RequestTimeout,
  StartupError,
  TransportError,
} from "./errors.js";
export type { FramingErrorKind } from "./errors.js";
export { PROTOCOL_VERSION, SDK_NAME, SDK_VERSION } from "./constants.js";
