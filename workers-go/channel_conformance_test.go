package aspectipc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Notification handlers run one at a time, in arrival order, on each channel (PROTOCOL.md 4.5);
// requests, responses and $/cancelRequest are not held up behind them.
func TestNotificationsRunOneAtATimeInOrder(t *testing.T) {
	t.Parallel()
	for _, c := range bothCodecs {
		c := c
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var order []int64
			var running, overlap atomic.Int32
			done := make(chan struct{})
			release := make(chan struct{})
			const n = 50
			handlers := HandlerTable{
				"note": func(_ context.Context, p Params) (any, error) {
					if running.Add(1) > 1 {
						overlap.Add(1)
					}
					defer running.Add(-1)
					var args struct{ N int64 }
					_ = p.Decode(&args)
					if args.N == 0 {
						<-release // the first one blocks until the requests below are answered
					}
					time.Sleep(time.Duration(args.N%3) * time.Millisecond)
					mu.Lock()
					order = append(order, args.N)
					if len(order) == n {
						close(done)
					}
					mu.Unlock()
					if args.N == 7 {
						return nil, errors.New("a failing handler does not stop the next")
					}
					return nil, nil
				},
				"echo": func(_ context.Context, p Params) (any, error) { return p.Value(), nil },
				"wait": func(ctx context.Context, _ Params) (any, error) {
					<-ctx.Done()
					return nil, ctx.Err()
				},
			}
			left, right := channelPair(t, c.framing, c.codec, nil, handlers)
			_ = right
			for i := int64(0); i < n; i++ {
				if err := left.Notify(context.Background(), "note", map[string]any{"n": i}); err != nil {
					t.Fatal(err)
				}
			}
			// While the first notification blocks, requests are answered and cancellation works.
			if r, err := left.Request(context.Background(), "echo", []any{"x"}); err != nil || !sameValue(r.Value(), []any{"x"}) {
				t.Fatalf("echo behind a blocked notification: %v, %v", r.Value(), err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if _, err := left.Request(ctx, "wait", nil); err == nil {
				t.Fatal("wait returned without being cancelled")
			}
			close(release)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("only %d notifications ran", len(order))
			}
			mu.Lock()
			defer mu.Unlock()
			for i, v := range order {
				if v != int64(i) {
					t.Fatalf("order %v", order)
				}
			}
			if overlap.Load() != 0 {
				t.Fatalf("%d notification handlers overlapped", overlap.Load())
			}
		})
	}
}

func TestShutdownParams(t *testing.T) {
	valid := map[string]struct {
		params any
		want   time.Duration
	}{
		"absent":        {nil, defaultShutdownTimeout},
		"empty":         {map[string]any{}, defaultShutdownTimeout},
		"null":          {map[string]any{"timeout": nil}, defaultShutdownTimeout},
		"zero":          {map[string]any{"timeout": int64(0)}, 0},
		"float":         {map[string]any{"timeout": 0.25}, 250 * time.Millisecond},
		"integer":       {map[string]any{"timeout": int64(2)}, 2 * time.Second},
		"minus zero":    {map[string]any{"timeout": math.Copysign(0, -1)}, 0},
		"huge":          {map[string]any{"timeout": 1e300}, time.Duration(math.MaxInt64)},
		"extra members": {map[string]any{"timeout": int64(1), "why": "x"}, time.Second},
	}
	for name, c := range valid {
		msg := Message{Kind: KindRequest, Method: "$/shutdown", Params: c.params, HasParams: c.params != nil}
		if got, err := shutdownTimeout(msg); err != nil || got != c.want {
			t.Errorf("%s: got %v, %v; want %v", name, got, err, c.want)
		}
	}
	invalid := map[string]any{
		"negative":   map[string]any{"timeout": int64(-1)},
		"negative f": map[string]any{"timeout": -0.5},
		"string":     map[string]any{"timeout": "5"},
		"boolean":    map[string]any{"timeout": true},
		"NaN":        map[string]any{"timeout": math.NaN()},
		"infinity":   map[string]any{"timeout": math.Inf(1)},
		"array":      []any{int64(5)},
		"map":        map[string]any{"timeout": map[string]any{}},
	}
	for name, params := range invalid {
		msg := Message{Kind: KindRequest, Method: "$/shutdown", Params: params, HasParams: true}
		if got, err := shutdownTimeout(msg); err == nil || err.Code != CodeInvalidParams {
			t.Errorf("%s: got %v, %v; want -32602", name, got, err)
		}
	}
}

// A request never goes unanswered (PROTOCOL.md 4.9): an error response that cannot be encoded is
// replaced by -32603, one over the limit by -32005, both with the request's id; a request or
// notification too large to send is a local error that says which and gives the numbers.
func TestEveryRequestIsAnswered(t *testing.T) {
	t.Parallel()
	handlers := HandlerTable{
		"binaryData": func(context.Context, Params) (any, error) { return nil, &Error{Code: 7, Message: "x", Data: []byte{1}} },
		"badMessage": func(context.Context, Params) (any, error) { return nil, &Error{Code: 7, Message: "a\xffb"} },
		"bigError":   func(context.Context, Params) (any, error) { return nil, errors.New(strings.Repeat("e", 2000)) },
		"deepResult": func(context.Context, Params) (any, error) { return nestedArrays(600), nil },
		"badUTF8Data": func(context.Context, Params) (any, error) {
			return nil, &Error{Code: 7, Message: "x", Data: "\xed\xa0\x80"}
		},
	}
	client, _ := channelPair(t, LineDelimitedFraming{MaxLineLength: 1024}, JSONCodec{}, nil, handlers)
	// A typed error's message that is not Unicode is sent with U+FFFD (4.10); its data is not.
	for method, code := range map[string]int{"binaryData": CodeInternalError, "badMessage": 7,
		"bigError": CodeMessageTooLarge, "deepResult": CodeInternalError, "badUTF8Data": CodeInternalError} {
		_, err := client.Request(context.Background(), method, nil)
		var rpcErr *Error
		if !errors.As(err, &rpcErr) || rpcErr.Code != code {
			t.Errorf("%s: got %v, want code %d", method, err, code)
		}
	}
	params := []string{strings.Repeat("y", 2000)}
	_, reqErr := client.Request(context.Background(), "x", params)
	checkLocal := func(what string, err error, msg map[string]any) {
		t.Helper()
		out, _ := JSONCodec{}.Encode(msg)
		want := fmt.Sprintf("%s of %d bytes exceeds max_line_length of 1024 bytes", what, len(out))
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
	checkLocal("request", reqErr, JSONRPCProtocol{}.Request(IntID(6), "x", params))
	checkLocal("notification", client.Notify(context.Background(), "x", params), JSONRPCProtocol{}.Notification("x", params))
}
