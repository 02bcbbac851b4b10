package aspectipc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"unicode/utf8"
)

// A handler fails by returning an error or by panicking. Unless the error is an *Error (an answer
// with a code of its own), the peer gets CodeHandlerError with data {"type", "traceback"}
// (PROTOCOL.md 4.10) and the failure is logged. Only a panic has a stack to send: a returned Go
// error carries none.

// failurePolicy is what a channel does with a failed handler.
type failurePolicy struct {
	// noTraceback leaves "traceback" out of the wire error (ASPECT_IPC_TRACEBACKS=0).
	noTraceback bool
	// log receives every handler failure, with its traceback; nil: failures are not logged.
	log *slog.Logger
}

// panicError is a handler's panic, recovered, with the stack of the goroutine it happened on.
type panicError struct {
	value any
	stack []byte // debug.Stack() taken in the deferred recover: it shows the panicking frames
}

// Error implements the error interface.
func (p *panicError) Error() string { return fmt.Sprint(p.value) }

// traceback is the panic as Go prints it: "panic: <value>", a blank line, the goroutine stack.
func (p *panicError) traceback() string { return "panic: " + p.Error() + "\n\n" + string(p.stack) }

// callHandler runs h, turning a panic into a *panicError: a panicking handler never takes the
// worker down.
func callHandler(ctx context.Context, h Handler, params Params) (result any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{value: r, stack: debug.Stack()}
		}
	}()
	return h(ctx, params)
}

// wireError maps a handler's error to the error sent on the wire (PROTOCOL.md 4.5, 4.10, 9.3);
// failed is true when it is a failure to log (answered CodeHandlerError, not a typed answer).
func (p failurePolicy) wireError(ctx context.Context, err error) (e *Error, failed bool) {
	var pe *panicError
	if errors.As(err, &pe) {
		data := map[string]any{"type": unicodeText(typeName(pe.value))}
		if !p.noTraceback {
			data["traceback"] = unicodeText(pe.traceback())
		}
		return &Error{Code: CodeHandlerError, Message: failureText(pe.Error(), data), Data: data}, true
	}
	var rpcErr *Error
	if errors.As(err, &rpcErr) {
		if !utf8.ValidString(rpcErr.Message) { // a copy: the handler's *Error may be shared
			typed := *rpcErr
			typed.Message = unicodeText(typed.Message)
			return &typed, false
		}
		return rpcErr, false // its Data is sent as given, or answered -32603 (4.9)
	}
	if ctx.Err() != nil {
		return cancelledError(), false
	}
	data := map[string]any{"type": unicodeText(typeName(err))}
	return &Error{Code: CodeHandlerError, Message: failureText(err.Error(), data), Data: data}, true
}

// failureText is a -32000's message: the failure's text, or its type when it has none
// (errors.New(""), panic("")), so that the message never says nothing (PROTOCOL.md 4.10).
func failureText(text string, data map[string]any) string {
	if text == "" {
		return data["type"].(string)
	}
	return unicodeText(text)
}

// unicodeText replaces each run of invalid UTF-8 bytes in s with U+FFFD (PROTOCOL.md 4.10, "Text
// that is not Unicode"). Applied to the message, data.type and data.traceback of the error
// response built for a handler's failure, so that an error quoting raw bytes still reaches the
// caller with its text, type and stack instead of failing to encode (-32603). Never applied to a
// typed error's Data nor to results: those are sent as given.
func unicodeText(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// logFailure writes a handler failure to the policy's logger: what failed where, and the
// traceback of a panic on the following lines (one record, so that it reads as Go prints panics).
func (p failurePolicy) logFailure(channel, kind, method string, err error) {
	if p.log == nil {
		return
	}
	msg := fmt.Sprintf("aspect-ipc: %s handler %q on the %s channel failed (%s): %v", kind, method, channel, typeOf(err), err)
	var pe *panicError
	if errors.As(err, &pe) {
		msg += "\n" + pe.traceback()
	}
	p.log.Error(strings.TrimRight(msg, "\n"))
}

// typeOf names the type of a failure: the panic value's for a panic.
func typeOf(err error) string {
	var pe *panicError
	if errors.As(err, &pe) {
		return typeName(pe.value)
	}
	return typeName(err)
}

func cancelledError() *Error {
	return &Error{Code: CodeRequestCancelled, Message: "request cancelled", cause: ErrRequestCancelled}
}

// typeName names a value's Go type for data.type, without the pointer star: "errors.errorString",
// "os.PathError", "runtime.boundsError", "string".
func typeName(v any) string {
	return strings.TrimLeft(fmt.Sprintf("%T", v), "*")
}
