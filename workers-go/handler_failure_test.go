package aspectipc

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// panicOutOfRange is a named handler, so that its name can be looked for in the traceback.
func panicOutOfRange(_ context.Context, p Params) (any, error) {
	var xs []int
	return xs[len(p.Value().([]any))], nil // index out of range: a runtime error
}

func panicString(context.Context, Params) (any, error) { panic("boom") }

// remoteError sends a request and returns the *Error it must fail with.
func remoteError(t *testing.T, client *Channel, method string, params any) *Error {
	t.Helper()
	_, err := client.Request(context.Background(), method, params)
	var rpcErr *Error
	if !errors.As(err, &rpcErr) {
		t.Fatalf("%s: %#v, want an *Error", method, err)
	}
	return rpcErr
}

// checkTraceback checks a panic's wire error: -32000, the panic value as message, its type, and
// a traceback that shows the panic and the handler that panicked.
func checkTraceback(t *testing.T, e *Error, message, typ, handler string) {
	t.Helper()
	data, _ := e.Data.(map[string]any)
	tb, _ := data["traceback"].(string)
	if e.Code != CodeHandlerError || e.Message != message || data["type"] != typ || len(data) != 2 ||
		!strings.HasPrefix(tb, "panic: "+message+"\n\ngoroutine ") || !strings.Contains(tb, handler) {
		t.Fatalf("panic error: code %d, message %q, data %#v", e.Code, e.Message, e.Data)
	}
}

// The data shape of each kind of failure, on both codecs (PROTOCOL.md 4.10).
func TestHandlerFailureData(t *testing.T) {
	t.Parallel()
	for _, c := range bothCodecs {
		c := c
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			handlers := HandlerTable{
				"string": panicString,
				"index":  panicOutOfRange,
				"plain":  func(context.Context, Params) (any, error) { return nil, os.ErrPermission },
				"typed": func(context.Context, Params) (any, error) {
					return nil, &Error{Code: CodeHandlerError, Message: "mine", Data: map[string]any{"k": "v"}}
				},
				"echo": func(_ context.Context, p Params) (any, error) { return p.Value(), nil },
			}
			client, _ := channelPair(t, c.framing, c.codec, nil, handlers)
			checkTraceback(t, remoteError(t, client, "string", nil), "boom", "string", "workers-go.panicString(")
			checkTraceback(t, remoteError(t, client, "index", []any{1, 2, 3}),
				"runtime error: index out of range [3] with length 0", "runtime.boundsError", "workers-go.panicOutOfRange(")
			if e := remoteError(t, client, "plain", nil); e.Code != CodeHandlerError || e.Message != os.ErrPermission.Error() ||
				!sameValue(e.Data, map[string]any{"type": "errors.errorString"}) {
				t.Fatalf("plain error: %#v", e)
			}
			if e := remoteError(t, client, "typed", nil); e.Code != CodeHandlerError || e.Message != "mine" ||
				!sameValue(e.Data, map[string]any{"k": "v"}) {
				t.Fatalf("typed error: %#v", e)
			}
			// The panics did not take the channel down.
			if res, err := client.Request(context.Background(), "echo", []any{"alive"}); err != nil || !sameValue(res.Value(), []any{"alive"}) {
				t.Fatalf("after the panics: %v, %v", res, err)
			}

			a, b := socketPair(t)
			client = quietPair(t, c.framing, c.codec, a, b, handlers)
			if e := remoteError(t, client, "string", nil); e.Code != CodeHandlerError || e.Message != "boom" ||
				!sameValue(e.Data, map[string]any{"type": "string"}) {
				t.Fatalf("panic without traceback: %#v", e)
			}
		})
	}
}

// A failure whose text is not Unicode still reaches the caller, each run of invalid UTF-8 bytes
// replaced with U+FFFD, in the message, type and traceback, and in a typed error's message; a
// typed error's Data is sent as given, so one that cannot be encoded is answered -32603
// (PROTOCOL.md 4.9, 4.10).
func TestHandlerFailureNotUnicode(t *testing.T) {
	t.Parallel()
	badData := "raw \xfe"
	for _, c := range bothCodecs {
		c := c
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			typed := &Error{Code: 42, Message: "bad \xff\xfe", Data: map[string]any{"k": "v"}}
			handlers := HandlerTable{
				"plain": func(context.Context, Params) (any, error) { return nil, errors.New("bad \xff") },
				"panic": func(context.Context, Params) (any, error) { panic("bad \xff") },
				"typed": func(context.Context, Params) (any, error) { return nil, typed },
				"data": func(context.Context, Params) (any, error) {
					return nil, &Error{Code: 42, Message: "mine", Data: badData}
				},
			}
			client, _ := channelPair(t, c.framing, c.codec, nil, handlers)
			call := func(method string) *Error { // bounded: a request left unanswered fails, not hangs
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, err := client.Request(ctx, method, nil)
				var rpcErr *Error
				if !errors.As(err, &rpcErr) || errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("%s: %v, want an answer", method, err)
				}
				return rpcErr
			}
			if e := call("plain"); e.Code != CodeHandlerError || e.Message != "bad \uFFFD" ||
				!sameValue(e.Data, map[string]any{"type": "errors.errorString"}) {
				t.Errorf("plain error: %#v", e)
			}
			if e := call("typed"); e.Code != 42 || e.Message != "bad \uFFFD" || !sameValue(e.Data, map[string]any{"k": "v"}) {
				t.Errorf("typed error: %#v", e)
			}
			if typed.Message != "bad \xff\xfe" {
				t.Errorf("the handler's error was changed: %q", typed.Message)
			}
			if e := call("data"); e.Code != CodeInternalError || e.Data != nil ||
				!strings.HasPrefix(e.Message, "Internal error: the error response cannot be encoded: ") {
				t.Errorf("typed error with data not Unicode: %#v", e)
			}
			e := call("panic")
			checkTraceback(t, e, "bad \uFFFD", "string", "workers-go.TestHandlerFailureNotUnicode.")
			if tb := e.Data.(map[string]any)["traceback"].(string); !utf8.ValidString(tb) {
				t.Errorf("traceback not valid UTF-8: %q", tb)
			}
		})
	}
}

func TestTracebacksVariable(t *testing.T) {
	t.Parallel()
	for raw, off := range map[string]bool{"": false, "1": false, "0": true} {
		if got, err := tracebacksOff(raw); err != nil || got != off {
			t.Errorf("%q: off=%v, %v", raw, got, err)
		}
	}
	for _, raw := range []string{"true", "yes", " 0", "00", "0 ", "on", "2"} {
		_, err := tracebacksOff(raw)
		var se *StartupError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), "invalid ASPECT_IPC_TRACEBACKS \""+raw+"\": expected") {
			t.Errorf("%q: %v", raw, err)
		}
	}
}

// quietPair connects a client to a server channel that sends no tracebacks (what
// ASPECT_IPC_TRACEBACKS=0 sets), and returns the client.
func quietPair(t *testing.T, framing Framing, codec Codec, a, b net.Conn, handlers HandlerTable) *Channel {
	t.Helper()
	var chans []*Channel
	for _, conn := range []net.Conn{a, b} {
		ch, err := NewChannelBuilder().WithTransport(conn).WithFraming(framing).WithCodec(codec).WithHandlers(handlers).Build()
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	chans[1].failures.noTraceback = true // before Run: no handler reads it yet
	for _, ch := range chans {
		go ch.Run(context.Background())
		t.Cleanup(func() { ch.Close() })
	}
	return chans[0]
}
