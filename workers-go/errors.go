package aspectipc

import (
	"errors"
	"fmt"
)

// JSON-RPC error codes used by the protocol (PROTOCOL.md section 12). Applications use codes
// outside -32768..-32000 for their own errors.
const (
	// CodeParseError: the line/frame is not valid JSON / MessagePack (id null).
	CodeParseError = -32700
	// CodeInvalidRequest: not a valid JSON-RPC 2.0 message for this profile, or a batch.
	CodeInvalidRequest = -32600
	// CodeMethodNotFound: no handler for the method.
	CodeMethodNotFound = -32601
	// CodeInvalidParams: a handler rejected its params (Params.Decode failed).
	CodeInvalidParams = -32602
	// CodeInternalError: the receiver failed outside any handler.
	CodeInternalError = -32603
	// CodeHandlerError: a handler failed with an error that carries no code of its own.
	CodeHandlerError = -32000
	// CodeRequestTimeout: the caller's timeout expired (local).
	CodeRequestTimeout = -32001
	// CodeRequestCancelled: the handler was cancelled.
	CodeRequestCancelled = -32002
	// CodeUnauthorized: $/hello missing, wrong token, or a second data connection.
	CodeUnauthorized = -32003
	// CodeShuttingDown: a request arrived after $/shutdown.
	CodeShuttingDown = -32004
	// CodeMessageTooLarge: an oversized line/frame was received, or a result could not be sent.
	CodeMessageTooLarge = -32005
	// CodeWorkerCrashed: the worker died with requests pending (parent-local).
	CodeWorkerCrashed = -32006
	// CodeProtocolMismatch: protocol version mismatch.
	CodeProtocolMismatch = -32007
	// CodeChannelClosed: the channel closed with requests pending (local).
	CodeChannelClosed = -32008
	// CodeTooManyStreams: a request would open more than 64 streams on a channel (PROTOCOL.md 13.8).
	CodeTooManyStreams = -32009
	// CodeStreamProtocol: a stream's peer broke flow control or ordering (PROTOCOL.md 13.5).
	CodeStreamProtocol = -32010
	// CodeStreamClosed: a send on a stream the other side has ended (local, PROTOCOL.md 13.6).
	CodeStreamClosed = -32011
)

// Sentinel errors. They are wrapped by the typed errors below, so test them with errors.Is.
var (
	// ErrIncomplete is returned by FrameDecoder.Next when no complete frame is buffered yet.
	ErrIncomplete = errors.New("aspectipc: incomplete frame, more data needed")
	// ErrChannelClosed reports a request that cannot complete because its channel closed.
	ErrChannelClosed = errors.New("aspectipc: channel closed")
	// ErrRequestCancelled reports a handler or request cancelled by $/cancelRequest or shutdown.
	ErrRequestCancelled = errors.New("aspectipc: request cancelled")
	// ErrShuttingDown reports a request refused because the worker is shutting down.
	ErrShuttingDown = errors.New("aspectipc: shutting down")
	// ErrParentLost reports handlers cancelled because the parent closed the channel.
	ErrParentLost = errors.New("aspectipc: parent closed the channel")
	// ErrInlineWait reports a call from an inline handler (Inline) that would wait for the peer on
	// the channel whose read loop runs the handler: its answer could never be read.
	ErrInlineWait = errors.New("aspectipc: an inline handler cannot wait for the peer")
	// ErrReservedMethod reports an attempt to register a handler for a "$/" method.
	ErrReservedMethod = errors.New("aspectipc: method names starting with $/ are reserved for the protocol")
	// ErrEmptyName reports an empty namespace or worker id given to PipePath.ForModule.
	ErrEmptyName = errors.New("aspectipc: namespace and worker id must not be empty")
	// ErrDirectoryTooLong reports a directory so long that no socket name fits the path limit.
	ErrDirectoryTooLong = errors.New("aspectipc: directory too long for a socket path")
	// ErrAddressInUse reports a data path on which a live worker already listens.
	ErrAddressInUse = errors.New("address in use by a live worker")
	// ErrNotSocket reports a data path taken by something that is not a socket.
	ErrNotSocket = errors.New("path exists and is not a socket")
)

// Error is a JSON-RPC error: what a peer answered, and what a handler returns to answer with a
// code of its own. A handler that returns an *Error (or an error wrapping one) gets exactly that
// code, message and data on the wire; any other error is sent as CodeHandlerError.
type Error struct {
	// Code is the JSON-RPC error code.
	Code int
	// Message is the human-readable message sent on the wire.
	Message string
	// Data is optional extra information; nil leaves the "data" member out.
	Data any
	// cause links local errors (timeouts, cancellation, closed channel) to their sentinel.
	cause error
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("%s (code %d)", e.Message, e.Code)
}

// Unwrap returns the local cause of the error, if any (context.DeadlineExceeded,
// ErrChannelClosed...).
func (e *Error) Unwrap() error { return e.cause }

// FramingErrorKind names what is wrong with a stream's framing; the values are the kinds used by
// spec/vectors.
type FramingErrorKind string

// The framing error kinds.
const (
	// FrameTooLarge: a frame header declared more than max_frame_size bytes (fatal).
	FrameTooLarge FramingErrorKind = "frame_too_large"
	// EmptyFrame: a frame header declared zero bytes (fatal).
	EmptyFrame FramingErrorKind = "empty_frame"
	// Truncated: the stream ended inside a frame or an unterminated line.
	Truncated FramingErrorKind = "truncated"
	// LineTooLong: a line exceeded max_line_length (recoverable on read).
	LineTooLong FramingErrorKind = "line_too_long"
	// InvalidLine: a payload to send as a line contains a newline.
	InvalidLine FramingErrorKind = "invalid_line"
)

// FramingError reports a broken stream: a frame or line that cannot be delimited.
type FramingError struct {
	// Kind says what went wrong.
	Kind FramingErrorKind
	// Size is the offending size in bytes when known (declared frame length, line length); 0
	// when only "more than Limit" is known (a line too long detected before its end).
	Size int64
	// Limit is the limit that was exceeded, when relevant.
	Limit int64
	// what names what was too large in the message: "request", "notification"; "frame" or
	// "line" when empty.
	what string
}

// Error implements the error interface.
func (e *FramingError) Error() string {
	switch e.Kind {
	case FrameTooLarge:
		return e.sizeText(cmpOr(e.what, "frame")) + " (data channel): raise max_frame_size or split the payload"
	case EmptyFrame:
		return "data channel frame of length 0: frames must carry at least one byte"
	case LineTooLong:
		return e.sizeText(cmpOr(e.what, "line")) + " (control channel): send bulk data on the data channel"
	case InvalidLine:
		return "control channel payload contains a raw newline: a line-delimited message must be one line"
	case Truncated:
		return "stream ended in the middle of a message"
	}
	return "framing error: " + string(e.Kind)
}

// sizeText states a size error with exact byte counts (PROTOCOL.md 12, -32005): "frame of 4097
// bytes exceeds max_frame_size of 4096 bytes", or "line of more than 1024 bytes exceeds..." when
// the size is not known.
func (e *FramingError) sizeText(what string) string {
	name := "max_frame_size"
	if e.Kind == LineTooLong {
		name = "max_line_length"
	}
	if e.Size > 0 {
		return fmt.Sprintf("%s of %d bytes exceeds %s of %d bytes", what, e.Size, name, e.Limit)
	}
	return fmt.Sprintf("%s of more than %d bytes exceeds %s of %d bytes", what, e.Limit, name, e.Limit)
}

func cmpOr(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// tooLargeError is the -32005 error for a size error: what is "frame", "line" or "response"; data
// carries the size when known and the limit.
func tooLargeError(what string, fe *FramingError) *Error {
	data := map[string]any{"limit": fe.Limit}
	if fe.Size > 0 {
		data["size"] = fe.Size
	}
	return &Error{Code: CodeMessageTooLarge, Message: fe.sizeText(what), Data: data}
}

// CodecError reports a value that cannot be encoded, or bytes that cannot be decoded, by a Codec.
type CodecError struct {
	// Codec is the codec's name ("json" or "msgpack").
	Codec string
	// Message says what is wrong, where (the Path) and what to do.
	Message string
	// Path is the place of the value that failed in the value encoded, JSONPath style, from the
	// message envelope when a channel encodes a message: "$.params.rows[3].when", `$["a b"]`
	// for a key that is not an identifier, "$" for the value itself. It is also set when a
	// decode hook fails (the place of the map it was given); "" when unknown.
	Path string
	// recoverable: the bytes are well-formed (valid JSON, a readable MessagePack map) and failed
	// on their content, so the id of a request can be recovered from them (PROTOCOL.md 4.8).
	recoverable bool
	// cause is the error of a codec hook, if one failed (or panicked with an error), or of a
	// MarshalJSON or MarshalText method.
	cause error
}

// Error implements the error interface.
func (e *CodecError) Error() string { return e.Codec + " codec: " + e.Message }

// Unwrap returns the error a codec hook returned (or panicked with), if a hook failed, or the
// error of a MarshalJSON or MarshalText method.
func (e *CodecError) Unwrap() error { return e.cause }

// ProtocolError reports a message that breaks JSON-RPC as profiled by the protocol, such as an
// invalid response to one of our requests, or one that cannot be decoded (PROTOCOL.md 4.8).
type ProtocolError struct {
	// Message says what is wrong.
	Message string
	// cause is what broke, when it is an error of its own: the *CodecError of an answer that
	// cannot be decoded.
	cause error
}

// Error implements the error interface.
func (e *ProtocolError) Error() string { return "protocol error: " + e.Message }

// Unwrap returns the cause, if any: the *CodecError of an answer that cannot be decoded.
func (e *ProtocolError) Unwrap() error { return e.cause }

// StartupError reports a worker that cannot start: a bad environment, a data path in use. Serve
// writes its Message on stderr as one line ("aspect-ipc worker: " and the Message) before it
// returns it; the process should then exit with ExitCode(err), which is 2.
type StartupError struct {
	// Message says what is wrong and what to do.
	Message string
	cause   error
}

// Error implements the error interface.
func (e *StartupError) Error() string { return "aspect-ipc worker cannot start: " + e.Message }

// Unwrap returns the underlying cause (ErrAddressInUse, ErrNotSocket, an OS error...).
func (e *StartupError) Unwrap() error { return e.cause }

// ExitCode maps the error returned by Serve to the process exit code the protocol expects: 0 for
// nil (a clean stop), 2 for a StartupError, 1 otherwise.
func ExitCode(err error) int {
	var startup *StartupError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &startup):
		return 2
	}
	return 1
}
