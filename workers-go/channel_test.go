package aspectipc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// socketPair returns the two ends of a real Unix stream socket pair.
func socketPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return conn(fds[0]), conn(fds[1])
}

// channelPair connects two running channels over a socket pair with the given framing and codec.
func channelPair(t *testing.T, framing Framing, codec Codec, left, right HandlerTable) (*Channel, *Channel) {
	t.Helper()
	a, b := socketPair(t)
	build := func(name string, conn net.Conn, hs HandlerTable) *Channel {
		ch, err := NewChannelBuilder().WithName(name).WithTransport(conn).WithFraming(framing).
			WithCodec(codec).WithHandlers(hs).Build()
		if err != nil {
			t.Fatal(err)
		}
		go ch.Run(context.Background())
		t.Cleanup(func() { ch.Close() })
		return ch
	}
	return build("left", a, left), build("right", b, right)
}

var bothCodecs = []struct {
	name    string
	framing Framing
	codec   Codec
}{
	{"json", LineDelimitedFraming{}, JSONCodec{}},
	{"msgpack", LengthPrefixedFraming{}, MessagePackCodec{}},
}

type point struct {
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
	Label string  `json:"label,omitempty"`
}

func TestChannelRequestsAndErrors(t *testing.T) {
	t.Parallel()
	for _, c := range bothCodecs {
		c := c
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			handlers := HandlerTable{
				"norm": func(_ context.Context, p Params) (any, error) {
					var pt point
					if err := p.Decode(&pt); err != nil {
						return nil, err
					}
					return point{X: pt.X * 2, Y: pt.Y * 2, Label: pt.Label + "!"}, nil
				},
				"plain": func(context.Context, Params) (any, error) { return nil, os.ErrPermission },
				"typed": func(context.Context, Params) (any, error) {
					return nil, fmt.Errorf("wrapped: %w", &Error{Code: 7, Message: "seven", Data: map[string]any{"k": "v"}})
				},
				"panics": func(context.Context, Params) (any, error) { panic("boom") },
			}
			client, _ := channelPair(t, c.framing, c.codec, nil, handlers)
			ctx := context.Background()

			// Integers are accepted where floats are expected; params decode into a struct.
			res, err := client.Request(ctx, "norm", map[string]any{"x": 1, "y": 2.5, "label": "p"})
			if err != nil {
				t.Fatal(err)
			}
			var got point
			if err := res.Decode(&got); err != nil || got != (point{X: 2, Y: 5, Label: "p!"}) {
				t.Fatalf("norm: %+v, %v", got, err)
			}
			_, err = client.Request(ctx, "norm", map[string]any{"x": "one"})
			var rpcErr *Error
			if !errors.As(err, &rpcErr) || rpcErr.Code != CodeInvalidParams {
				t.Fatalf("bad params: %v", err)
			}
			_, err = client.Request(ctx, "plain", nil)
			if !errors.As(err, &rpcErr) || rpcErr.Code != CodeHandlerError || rpcErr.Message != os.ErrPermission.Error() ||
				!sameValue(rpcErr.Data, map[string]any{"type": "errors.errorString"}) {
				t.Fatalf("plain error: %#v", err)
			}
			_, err = client.Request(ctx, "typed", nil)
			if !errors.As(err, &rpcErr) || rpcErr.Code != 7 || rpcErr.Message != "seven" || !sameValue(rpcErr.Data, map[string]any{"k": "v"}) {
				t.Fatalf("typed error: %#v", err)
			}
			_, err = client.Request(ctx, "panics", nil)
			if !errors.As(err, &rpcErr) || rpcErr.Code != CodeHandlerError || rpcErr.Message != "boom" {
				t.Fatalf("panic: %#v", err)
			}
			_, err = client.Request(ctx, "missing", nil)
			if !errors.As(err, &rpcErr) || rpcErr.Code != CodeMethodNotFound || rpcErr.Message != "Method not found: missing" {
				t.Fatalf("missing: %#v", err)
			}
			if _, err := client.Request(ctx, "norm", 5); err == nil {
				t.Fatal("scalar params were sent")
			}
		})
	}
}

func TestChannelHandlersReachThePeer(t *testing.T) {
	t.Parallel()
	parent := HandlerTable{"double": func(_ context.Context, p Params) (any, error) {
		var n []int64
		if err := p.Decode(&n); err != nil {
			return nil, err
		}
		return n[0] * 2, nil
	}}
	worker := HandlerTable{"viaParent": func(ctx context.Context, p Params) (any, error) {
		res, err := ChannelFrom(ctx).Request(ctx, "double", p)
		if err != nil {
			return nil, err
		}
		var n int64
		err = res.Decode(&n)
		return n + 1, err
	}}
	client, _ := channelPair(t, LengthPrefixedFraming{}, MessagePackCodec{}, parent, worker)
	res, err := client.Request(context.Background(), "viaParent", []any{20})
	if err != nil || !sameValue(res.Value(), int64(41)) {
		t.Fatalf("got %v, %v", res.Value(), err)
	}
}

func TestChannelCancellation(t *testing.T) {
	t.Parallel()
	causes := make(chan error, 1)
	handlers := HandlerTable{"wait": func(ctx context.Context, _ Params) (any, error) {
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return nil, ctx.Err()
	}}
	client, _ := channelPair(t, LengthPrefixedFraming{}, MessagePackCodec{}, nil, handlers)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := client.Request(ctx, "wait", nil)
	var rpcErr *Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != CodeRequestTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: %#v", err)
	}
	// The timeout sent $/cancelRequest, which reached the handler's context.
	select {
	case cause := <-causes:
		if !errors.Is(cause, ErrRequestCancelled) {
			t.Fatalf("cause %v", cause)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler was never cancelled")
	}
}

func TestChannelCloseFailsPendingAndCancelsHandlers(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	causes := make(chan error, 1)
	handlers := HandlerTable{"wait": func(ctx context.Context, _ Params) (any, error) {
		close(started)
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return nil, nil
	}}
	client, server := channelPair(t, LineDelimitedFraming{}, JSONCodec{}, nil, handlers)
	errs := make(chan error, 1)
	go func() {
		_, err := client.Request(context.Background(), "wait", nil)
		errs <- err
	}()
	<-started
	client.Close()
	err := <-errs
	var rpcErr *Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != CodeChannelClosed || !errors.Is(err, ErrChannelClosed) {
		t.Fatalf("pending request: %#v", err)
	}
	if cause := <-causes; !errors.Is(cause, ErrParentLost) {
		t.Fatalf("handler cause %v, want ErrParentLost", cause)
	}
	<-server.Done()
	if _, err := client.Request(context.Background(), "wait", nil); !errors.Is(err, ErrChannelClosed) {
		t.Fatalf("request on a closed channel: %v", err)
	}
}

// TestChannelConcurrentWritesNeverInterleave sends many large notifications from many goroutines
// at once; every frame must arrive whole.
func TestChannelConcurrentWritesNeverInterleave(t *testing.T) {
	t.Parallel()
	const senders, each = 12, 10
	var mu sync.Mutex
	seen := map[string]bool{}
	done := make(chan struct{})
	receiver := HandlerTable{"chunk": func(_ context.Context, p Params) (any, error) {
		var args struct {
			Tag  string `json:"tag"`
			Body []byte `json:"body"`
		}
		if err := p.Decode(&args); err != nil {
			t.Errorf("decode: %v", err)
			return nil, nil
		}
		if len(args.Body) != 100_000 || args.Body[0] != args.Tag[0] || args.Body[len(args.Body)-1] != args.Tag[0] {
			t.Errorf("corrupted body for %s", args.Tag)
		}
		mu.Lock()
		seen[args.Tag] = true
		if len(seen) == senders*each {
			close(done)
		}
		mu.Unlock()
		return nil, nil
	}}
	client, _ := channelPair(t, LengthPrefixedFraming{}, MessagePackCodec{}, nil, receiver)
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			fill := byte('a' + s)
			body := []byte(strings.Repeat(string(fill), 100_000))
			for i := 0; i < each; i++ {
				if err := client.Notify(context.Background(), "chunk", map[string]any{"tag": fmt.Sprintf("%c-%d", fill, i), "body": body}); err != nil {
					t.Error(err)
				}
			}
		}(s)
	}
	wg.Wait()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("received %d of %d notifications", len(seen), senders*each)
	}
}

func TestChannelOversizedAndUnencodableResults(t *testing.T) {
	t.Parallel()
	handlers := HandlerTable{
		"big":   func(context.Context, Params) (any, error) { return strings.Repeat("x", 600), nil },
		"bytes": func(context.Context, Params) (any, error) { return []byte{1}, nil },
	}
	client, _ := channelPair(t, LineDelimitedFraming{MaxLineLength: 400}, JSONCodec{}, nil, handlers)
	_, err := client.Request(context.Background(), "big", nil)
	var rpcErr *Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != CodeMessageTooLarge {
		t.Fatalf("oversized result: %#v", err)
	}
	_, err = client.Request(context.Background(), "bytes", nil)
	if !errors.As(err, &rpcErr) || rpcErr.Code != CodeInternalError || !strings.Contains(rpcErr.Message, "data channel") {
		t.Fatalf("binary result on JSON: %#v", err)
	}
	// An oversized request is never sent: the caller gets the framing error.
	_, err = client.Request(context.Background(), "big", []string{strings.Repeat("y", 600)})
	var fe *FramingError
	if !errors.As(err, &fe) || fe.Kind != LineTooLong {
		t.Fatalf("oversized request: %#v", err)
	}
}

func TestChannelRejectsReservedNames(t *testing.T) {
	t.Parallel()
	a, _ := socketPair(t)
	_, err := NewChannelBuilder().WithTransport(a).WithFraming(LineDelimitedFraming{}).WithCodec(JSONCodec{}).
		WithHandler("$/ping", func(context.Context, Params) (any, error) { return nil, nil }).Build()
	if !errors.Is(err, ErrReservedMethod) {
		t.Fatalf("Build: %v", err)
	}
	ch, _ := NewChannelBuilder().WithTransport(a).WithFraming(LineDelimitedFraming{}).WithCodec(JSONCodec{}).Build()
	if err := ch.Handle("$/mine", nil); !errors.Is(err, ErrReservedMethod) {
		t.Fatalf("Handle: %v", err)
	}
	if _, err := NewChannelBuilder().Build(); err == nil {
		t.Fatal("Build without a transport succeeded")
	}
}

func TestChannelLineTooLongKeepsTheChannel(t *testing.T) {
	t.Parallel()
	a, b := socketPair(t)
	ch, _ := NewChannelBuilder().WithTransport(a).WithFraming(LineDelimitedFraming{MaxLineLength: 200}).WithCodec(JSONCodec{}).
		WithHandler("echo", func(_ context.Context, p Params) (any, error) { return p.Value(), nil }).Build()
	go ch.Run(context.Background())
	defer ch.Close()
	b.Write([]byte(strings.Repeat("z", 5000) + "\n" + `{"jsonrpc":"2.0","id":1,"method":"echo","params":[1]}` + "\n"))
	dec := LineDelimitedFraming{}.NewDecoder()
	var lines []string
	buf := make([]byte, 4096)
	for len(lines) < 2 {
		b.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := b.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		dec.Feed(buf[:n])
		for {
			line, err := dec.Next()
			if err != nil {
				break
			}
			lines = append(lines, string(line))
		}
	}
	if !strings.Contains(lines[0], `"code":-32005`) || !strings.Contains(lines[0], `"id":null`) ||
		lines[1] != `{"id":1,"jsonrpc":"2.0","result":[1]}` {
		t.Fatalf("got %q", lines)
	}
}
