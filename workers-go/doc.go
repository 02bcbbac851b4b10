// Package aspectipc is the Go worker SDK of aspect-ipc: it lets a Go program run as a worker of an
// aspect-ipc parent, speaking the wire protocol of spec/PROTOCOL.md over two channels:
//
//   - control: the worker's stdin/stdout, one JSON-RPC 2.0 message per line, JSON;
//   - data: a Unix domain socket the worker listens on at ASPECT_IPC_DATA_PATH, frames of a
//     4-byte big-endian length + MessagePack, JSON-RPC 2.0, authenticated by $/hello.
//
// Most programs need only Serve:
//
//	err := aspectipc.Serve(ctx, aspectipc.Config{
//		Control: aspectipc.HandlerTable{"getStatus": getStatus},
//		Data:    aspectipc.HandlerTable{"processItems": processItems},
//	})
//	os.Exit(aspectipc.ExitCode(err))
//
// A worker that cannot start (an invalid environment, a data path in use) exits with code 2:
// Serve has written the reason on stderr as one line ("aspect-ipc worker: ..."), so main need not.
//
// Handlers receive a context.Context, cancelled on $/cancelRequest, shutdown and loss of the
// parent, and Params to Decode into their own struct. ChannelFrom and WorkerFrom reach the peer
// from inside a handler, to call or notify it on either channel. Handlers run concurrently, each
// on a goroutine; a handler registered with the Inline option runs on its channel's read loop
// instead, in arrival order, which saves a goroutine hand-over per request: for handlers that are
// short, never block and never wait for the peer (Request from one fails with ErrInlineWait
// rather than hang). A request may open streams
// (PROTOCOL.md 13): a handler wrapped in StreamHandler gets an InStream to read the caller's items
// and an OutStream to send items before its result, with credit-based flow control.
//
// The package is layered like vscode-jsonrpc, and each layer is exported for programs that compose
// their own worker:
//
//   - framing (pure): LineDelimitedFraming, LengthPrefixedFraming and their FrameDecoder;
//   - codecs (pure): JSONCodec, MessagePackCodec;
//   - protocol (pure): JSONRPCProtocol classifies messages and builds them;
//   - transports: StdioTransport, TakeOverStdout, TakeOverStdin, ListenPipe, DialPipe; PipePath computes paths;
//   - channel: ChannelBuilder builds a Channel (requests, notifications, handlers);
//   - worker: Serve, Config, Hooks, ShutdownReason, Worker.
//
// Beneath them, internal packages the compiler keeps out of reach of programs (and of the codecs'
// knowledge of the protocol): internal/msgpack (the SDK's own MessagePack encoder and decoder),
// internal/assign (generic values into Go values), internal/structs (the struct field cache both
// use) and internal/outframe (pooled frames built in place).
//
// Errors: *Error is a JSON-RPC error (received from the peer, or returned by a handler to choose
// the code); *FramingError, *CodecError, *ProtocolError and *StartupError are local failures; the
// sentinel errors (ErrChannelClosed, ErrRequestCancelled...) are wrapped by them, test with
// errors.Is. The data channel needs a Unix platform (Linux, macOS, the BSDs).
package aspectipc
