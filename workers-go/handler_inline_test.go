package aspectipc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// inlinePeer is a data channel serving handlers, some of them Inline, and the raw other end of
// its socket: the test writes frames and reads what the channel answers, in wire order.
type inlinePeer struct {
	t      *testing.T
	server *Channel
	conn   net.Conn
	in     *frameReader
}

func newInlinePeer(t *testing.T, build func(b *ChannelBuilder)) *inlinePeer {
	t.Helper()
	a, peer := socketPair(t)
	t.Cleanup(func() { peer.Close() })
	b := NewChannelBuilder().WithName("data").WithTransport(a).
		WithFraming(LengthPrefixedFraming{}).WithCodec(MessagePackCodec{})
	build(b)
	ch, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	go ch.Run(context.Background())
	t.Cleanup(func() { ch.Close() })
	return &inlinePeer{t: t, server: ch, conn: peer, in: &frameReader{t: t, conn: peer, dec: LengthPrefixedFraming{}.NewDecoder()}}
}

// frames encodes msgs as one write, so that the channel reads them together.
func (p *inlinePeer) send(msgs ...map[string]any) {
	p.t.Helper()
	var out []byte
	for _, m := range msgs {
		payload, err := MessagePackCodec{}.Encode(m)
		if err != nil {
			p.t.Fatal(err)
		}
		frame, _ := LengthPrefixedFraming{}.Encode(payload)
		out = append(out, frame...)
	}
	if _, err := p.conn.Write(out); err != nil {
		p.t.Fatal(err)
	}
}

func request(id any, method string, params any) map[string]any {
	m := map[string]any{"jsonrpc": "2.0", "id": id, "method": method}
	if params != nil {
		m["params"] = params
	}
	return m
}

func cancelFor(id any) map[string]any {
	return map[string]any{"jsonrpc": "2.0", "method": "$/cancelRequest", "params": map[string]any{"id": id}}
}

func wireCode(t *testing.T, msg map[string]any) int64 {
	t.Helper()
	e, ok := msg["error"].(map[string]any)
	if !ok {
		t.Fatalf("not an error response: %v", msg)
	}
	return e["code"].(int64)
}

func echoHandler(_ context.Context, p Params) (any, error) { return p.Value(), nil }

// Inline handlers answer, one after the other in arrival order, on the read loop, with the usual
// context: ChannelFrom works, and the handler is known to run inline.
func TestInlineHandlersAnswerInArrivalOrder(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []int64
	var badCtx []string
	var server *Channel
	record := func(ctx context.Context, p Params) (any, error) {
		var args struct {
			N int64 `json:"n"`
		}
		if err := p.Decode(&args); err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, args.N)
		if f := inflightFrom(ctx); f == nil || f.inline != "record" || ChannelFrom(ctx) != server || ctx.Err() != nil {
			badCtx = append(badCtx, "bad context")
		}
		return args.N, nil
	}
	p := newInlinePeer(t, func(b *ChannelBuilder) { b.WithHandler("record", record, Inline()) })
	server = p.server
	const n = 200
	var burst []map[string]any
	for i := int64(1); i <= n; i++ {
		burst = append(burst, request(i, "record", map[string]any{"n": i}))
	}
	p.send(burst...)
	for i := int64(1); i <= n; i++ {
		if r := p.in.next(); r["id"] != i || r["result"] != i {
			t.Fatalf("response %d: %v", i, r)
		}
	}
	p.send(map[string]any{"jsonrpc": "2.0", "method": "record", "params": map[string]any{"n": n + 1}},
		request(n+2, "record", map[string]any{"n": n + 2}))
	if r := p.in.next(); r["id"] != int64(n+2) {
		t.Fatalf("after the notification: %v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, v := range seen {
		if v != int64(i+1) {
			t.Fatalf("handlers ran in the order %v", seen)
		}
	}
	if len(seen) != n+2 || len(badCtx) > 0 {
		t.Fatalf("ran %d handlers, context problems: %v", len(seen), badCtx)
	}
}

// A panicking inline handler is answered like any other: -32000, the panic's message, its type
// and traceback, and logged; the channel goes on.
func TestInlinePanicIsTheUsualError(t *testing.T) {
	t.Parallel()
	var log syncBuffer
	p := newInlinePeer(t, func(b *ChannelBuilder) {
		b.WithLogger(slog.New(slog.NewTextHandler(&log, nil))).
			WithHandler("panics", panicString, Inline()).WithHandler("echo", echoHandler, Inline())
	})
	p.send(request(1, "panics", nil), request(2, "echo", []any{"after"}))
	r := p.in.next()
	if r["id"] != int64(1) || wireCode(t, r) != CodeHandlerError {
		t.Fatalf("panic answered %v", r)
	}
	e := r["error"].(map[string]any)
	data, _ := e["data"].(map[string]any)
	tb, _ := data["traceback"].(string)
	if e["message"] != "boom" || data["type"] != "string" || !strings.Contains(tb, "panicString") {
		t.Fatalf("panic error: %v", e)
	}
	if r := p.in.next(); r["id"] != int64(2) || !sameValue(r["result"], []any{"after"}) {
		t.Fatalf("after the panic: %v", r)
	}
	if !strings.Contains(log.String(), `request handler \"panics\" on the data channel failed`) {
		t.Fatalf("log: %q", log.String())
	}
}

// An inline request whose id is that of a request still running gets its own answer, as on the
// normal path (nothing refuses a reused id: PROTOCOL.md 4.4 forbids the sender to reuse one), and
// leaves the running request's bookkeeping alone: $/cancelRequest still reaches it. A
// $/cancelRequest for an inline request already answered does nothing.
func TestInlineDuplicateIDAndLateCancel(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	block := func(ctx context.Context, _ Params) (any, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	p := newInlinePeer(t, func(b *ChannelBuilder) {
		b.WithHandler("block", block).WithHandler("echo", echoHandler, Inline())
	})
	p.send(request(7, "block", nil))
	<-started
	p.send(request(7, "echo", []any{"dup"}))
	if r := p.in.next(); r["id"] != int64(7) || !sameValue(r["result"], []any{"dup"}) {
		t.Fatalf("duplicate id: %v", r)
	}
	p.send(cancelFor(7))
	if r := p.in.next(); r["id"] != int64(7) || wireCode(t, r) != CodeRequestCancelled {
		t.Fatalf("the running request after the duplicate: %v", r)
	}
	p.send(request(8, "echo", []any{1}), cancelFor(8), request(9, "echo", []any{2}))
	for _, want := range []int64{8, 9} {
		if r := p.in.next(); r["id"] != want || r["error"] != nil {
			t.Fatalf("want the answer to %d, got %v", want, r)
		}
	}
	// The blocked handler unregisters itself just after its response is written.
	if !waitHandlers(p.server.runningHandlers(nil), 10*time.Second) {
		t.Fatal("a handler is still running")
	}
	p.server.mu.Lock()
	defer p.server.mu.Unlock()
	if len(p.server.running) != 0 || len(p.server.active) != 0 {
		t.Fatalf("left behind: running %v, active %d", p.server.running, len(p.server.active))
	}
}

// An inline handler that would wait for the peer on its own channel is refused at once, with an
// error that says what to do, rather than stopping the channel for good; notifying the peer, which
// needs no answer, works.
func TestInlineHandlerCannotWaitForThePeer(t *testing.T) {
	t.Parallel()
	errs := make(chan error, 3)
	waits := func(ctx context.Context, _ Params) (any, error) {
		if err := ChannelFrom(ctx).Notify(ctx, "progress", map[string]any{"n": 1}); err != nil {
			return nil, err
		}
		sub, cancel := context.WithTimeout(ctx, time.Minute) // a derived ctx is still the handler's
		defer cancel()
		_, err := ChannelFrom(sub).Request(sub, "question", nil)
		errs <- err
		_, serr := ChannelFrom(ctx).RequestStream(ctx, "items", nil, StreamOptions{OutWindow: 1})
		errs <- serr
		return nil, err
	}
	p := newInlinePeer(t, func(b *ChannelBuilder) { b.WithHandler("waits", waits, Inline()) })
	p.send(request(1, "waits", nil))
	if n := p.in.next(); n["method"] != "progress" {
		t.Fatalf("want the notification first, got %v", n)
	}
	r := p.in.next()
	if r["id"] != int64(1) || wireCode(t, r) != CodeInternalError {
		t.Fatalf("answered %v", r)
	}
	msg := r["error"].(map[string]any)["message"].(string)
	for _, part := range []string{`"waits" runs inline`, "cannot wait for the peer", "remove Inline"} {
		if !strings.Contains(msg, part) {
			t.Fatalf("message %q does not say %q", msg, part)
		}
	}
	for i := 0; i < 2; i++ {
		if err := <-errs; !errors.Is(err, ErrInlineWait) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

// A request that opens a stream takes the normal path even when its method is Inline: its handler
// waits for the caller's items, which only the read loop delivers.
func TestInlineMethodWithStreamsRunsOnItsOwnGoroutine(t *testing.T) {
	t.Parallel()
	sum := func(ctx context.Context, _ Params, in *InStream, _ *OutStream) (any, error) {
		if in == nil {
			return "inline", nil
		}
		if inflightFrom(ctx).inline != "" {
			return nil, errors.New("a stream request ran inline")
		}
		total := int64(0)
		for {
			v, err := in.Recv(ctx)
			if errors.Is(err, io.EOF) {
				return total, nil
			}
			if err != nil {
				return nil, err
			}
			total += v.(int64)
		}
	}
	a, b := socketPair(t)
	server, err := NewChannelBuilder().WithName("data").WithTransport(a).WithFraming(LengthPrefixedFraming{}).
		WithCodec(MessagePackCodec{}).WithHandler("sum", StreamHandler(sum), Inline()).Build()
	if err != nil {
		t.Fatal(err)
	}
	client, _ := NewChannelBuilder().WithName("data").WithTransport(b).WithFraming(LengthPrefixedFraming{}).
		WithCodec(MessagePackCodec{}).Build()
	for _, ch := range []*Channel{server, client} {
		go ch.Run(context.Background())
		t.Cleanup(func() { ch.Close() })
	}
	ctx := context.Background()
	if r, err := client.Request(ctx, "sum", nil); err != nil || r.Value() != "inline" {
		t.Fatalf("plain request: %v, %v", r, err)
	}
	call, err := client.RequestStream(ctx, "sum", nil, StreamOptions{In: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 40; i++ { // more than the input window: credit must come back
		if err := call.In.Send(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := call.CloseInput(); err != nil {
		t.Fatal(err)
	}
	if r, err := call.Result(ctx); err != nil || r.Value() != int64(820) {
		t.Fatalf("stream request: %v, %v", r, err)
	}
}

// Shutdown sees an inline handler like any other: it waits for it (its response is written), and
// one still running past the timeout is cancelled and answered -32002 exactly once.
func TestInlineHandlersAreDrainedAndCancelled(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 2)
	release := make(chan struct{})
	// These inline handlers block: a misuse, to keep them running while the test looks.
	slow := func(context.Context, Params) (any, error) { started <- struct{}{}; <-release; return "done", nil }
	deaf := func(ctx context.Context, _ Params) (any, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	p := newInlinePeer(t, func(b *ChannelBuilder) { b.WithHandler("slow", slow, Inline()).WithHandler("deaf", deaf, Inline()) })

	p.send(request(1, "slow", nil))
	<-started
	hs := p.server.runningHandlers(nil)
	if len(hs) != 1 || hs[0].inline != "slow" {
		t.Fatalf("running handlers: %v", hs)
	}
	close(release)
	if !waitHandlers(hs, 10*time.Second) {
		t.Fatal("the drain did not see the inline handler end")
	}
	if r := p.in.next(); r["id"] != int64(1) || r["result"] != "done" {
		t.Fatalf("drained request: %v", r)
	}

	p.send(request(2, "deaf", nil), request(3, "deaf", nil))
	<-started
	hs = p.server.runningHandlers(nil)
	cancelHandlers(hs, ErrShuttingDown, 10*time.Second)
	if r := p.in.next(); r["id"] != int64(2) || wireCode(t, r) != CodeRequestCancelled {
		t.Fatalf("cancelled request: %v", r)
	}
	<-started // the next request is read only now, and its handler runs until cancelled too
	cancelHandlers(p.server.runningHandlers(nil), ErrShuttingDown, 10*time.Second)
	if r := p.in.next(); r["id"] != int64(3) || wireCode(t, r) != CodeRequestCancelled {
		t.Fatalf("second cancelled request: %v", r)
	}
}

// A request whose frame is over 64 KiB runs on a goroutine of its own even when its method is
// Inline: its handler may wait for the peer (here it asks the caller a question), where the same
// handler given a small request runs inline and may not.
func TestInlineMethodWithALargeRequestRunsOnItsOwnGoroutine(t *testing.T) {
	t.Parallel()
	asks := func(ctx context.Context, _ Params) (any, error) {
		r, err := ChannelFrom(ctx).Request(ctx, "question", nil)
		if err != nil {
			return nil, err
		}
		return r.Value(), nil
	}
	a, b := socketPair(t)
	server, err := NewChannelBuilder().WithName("data").WithTransport(a).WithFraming(LengthPrefixedFraming{}).
		WithCodec(MessagePackCodec{}).WithHandler("asks", asks, Inline()).Build()
	if err != nil {
		t.Fatal(err)
	}
	answer := func(context.Context, Params) (any, error) { return "forty-two", nil }
	client, _ := NewChannelBuilder().WithName("data").WithTransport(b).WithFraming(LengthPrefixedFraming{}).
		WithCodec(MessagePackCodec{}).WithHandler("question", answer).Build()
	for _, ch := range []*Channel{server, client} {
		go ch.Run(context.Background())
		t.Cleanup(func() { ch.Close() })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.Request(ctx, "asks", []any{make([]byte, 1000)}); err == nil ||
		!strings.Contains(err.Error(), "runs inline") {
		t.Fatalf("a small request: want the inline refusal, got %v", err)
	}
	r, err := client.Request(ctx, "asks", []any{make([]byte, 100*1024)})
	if err != nil || r.Value() != "forty-two" {
		t.Fatalf("a large request: %v, %v", r, err)
	}
}
