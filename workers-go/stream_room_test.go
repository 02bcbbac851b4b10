package aspectipc

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Stream steps, and the $/cancelRequest sent in the background, wait for room in the channel's
// write queue (a peer that does not read holds them up); they stop waiting when their ctx ends.
// Each test fills the queue of a channel whose peer reads nothing, then ends the ctx of a step
// once it is the one waiting for room.

// stalledPeer is the peer of a channel: it writes frames and reads nothing until listen.
type stalledPeer struct {
	t    *testing.T
	conn net.Conn
}

func stalledChannel(t *testing.T, handlers HandlerTable, logger *slog.Logger) (*Channel, *stalledPeer) {
	t.Helper()
	a, b := socketPair(t)
	ch, err := NewChannelBuilder().WithName("data").WithTransport(a).WithFraming(LengthPrefixedFraming{}).
		WithCodec(MessagePackCodec{}).WithHandlers(handlers).WithLogger(logger).Build()
	if err != nil {
		t.Fatal(err)
	}
	go ch.Run(context.Background())
	t.Cleanup(func() { ch.Close(); b.Close() })
	return ch, &stalledPeer{t: t, conn: b}
}

func (p *stalledPeer) send(msg map[string]any) {
	p.t.Helper()
	(&streamPeer{t: p.t, conn: p.conn}).send(msg)
}

// listen starts reading what the channel sent, and what it sends next.
func (p *stalledPeer) listen() *streamPeer { return wrapStreamPeer(p.t, p.conn) }

// fillWriteQueue makes the channel's next sender wait for room: one notification of 4 MiB is
// being written to the peer that does not read, another waits in the queue.
func fillWriteQueue(t *testing.T, ch *Channel) {
	t.Helper()
	big := strings.Repeat("f", 4<<20)
	for i := 0; i < 2; i++ {
		go func() { _ = ch.Notify(context.Background(), "fill", []any{big}) }()
	}
	waitFor(t, "the write queue to fill", func() bool { return queuedBytes(ch.writer) > queueLimit })
}

// waitFor waits until cond holds, failing after a bound meant only to stop a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after 10 s", what)
		}
	}
}

// A handler's OutStream.Send waiting for room returns once its ctx ends, or its request is
// cancelled, with that error; the item is not sent.
func TestStreamSendStopsWaitingForRoomWhenItsCtxEnds(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		end  func(p *stalledPeer, cancel context.CancelFunc)
		want error
	}{
		{"its ctx", func(_ *stalledPeer, cancel context.CancelFunc) { cancel() }, context.Canceled},
		{"the request cancelled", func(p *stalledPeer, _ context.CancelFunc) {
			p.send(map[string]any{"jsonrpc": "2.0", "method": "$/cancelRequest", "params": map[string]any{"id": 1}})
		}, ErrRequestCancelled},
	} {
		c := c
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cancels, sent := make(chan context.CancelFunc, 1), make(chan error, 1)
			ch, p := stalledChannel(t, HandlerTable{"produce": StreamHandler(func(ctx context.Context, _ Params, _ *InStream, out *OutStream) (any, error) {
				sendCtx, cancel := context.WithCancel(ctx)
				defer cancel()
				cancels <- cancel
				err := out.Send(sendCtx, "item")
				sent <- err
				return nil, err
			})}, nil)
			fillWriteQueue(t, ch)
			p.send(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "produce", "params": map[string]any{"$/stream": streamDesc(4, false)}})
			cancel := <-cancels
			waitFor(t, "Send to wait for room", func() bool { return waitingForRoom(ch.writer) })
			c.end(p, cancel)
			if err := within(t, sent, "Send after its ctx ended"); !errors.Is(err, c.want) {
				t.Fatalf("Send returned %v, want %v", err, c.want)
			}
		})
	}
}

// A call's side of its streams: RequestStream, the input stream's Send and CloseInput waiting for
// room return once their ctx ends.
func TestStreamCallStopsWaitingForRoomWhenItsCtxEnds(t *testing.T) {
	t.Parallel()
	t.Run("RequestStream", func(t *testing.T) {
		t.Parallel()
		ch, _ := stalledChannel(t, nil, nil)
		fillWriteQueue(t, ch)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		opened := make(chan error, 1)
		go func() {
			_, err := ch.RequestStream(ctx, "consume", nil, StreamOptions{In: true})
			opened <- err
		}()
		waitFor(t, "RequestStream to wait for room", func() bool { return waitingForRoom(ch.writer) })
		cancel()
		var e *Error
		if err := within(t, opened, "RequestStream after its ctx ended"); !errors.As(err, &e) || e.Code != CodeRequestCancelled || !errors.Is(err, context.Canceled) {
			t.Fatalf("RequestStream returned %v, want a cancelled request", err)
		}
	})
	for _, step := range []string{"Send", "CloseInput"} {
		step := step
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			ch, p := stalledChannel(t, nil, nil)
			callCtx, cancelCall := context.WithCancel(context.Background())
			defer cancelCall()
			call, err := ch.RequestStream(callCtx, "consume", nil, StreamOptions{In: true})
			if err != nil {
				t.Fatal(err)
			}
			p.send(map[string]any{"jsonrpc": "2.0", "method": "$/stream/credit", "params": map[string]any{"stream": 1, "dir": "in", "add": 4}})
			waitFor(t, "the credit", func() bool {
				call.In.mu.Lock()
				defer call.In.mu.Unlock()
				return call.In.credit == 4
			})
			fillWriteQueue(t, ch)
			sendCtx, cancelSend := context.WithCancel(context.Background())
			defer cancelSend()
			done := make(chan error, 1)
			go func() {
				if step == "Send" {
					done <- call.In.Send(sendCtx, "item")
				} else {
					done <- call.CloseInput()
				}
			}()
			waitFor(t, step+" to wait for room", func() bool { return waitingForRoom(ch.writer) })
			if step == "Send" {
				cancelSend()
				if err := within(t, done, "Send after its ctx ended"); !errors.Is(err, context.Canceled) {
					t.Fatalf("Send returned %v, want context.Canceled", err)
				}
				return
			}
			cancelCall() // CloseInput has the call's ctx
			var e *Error
			if err := within(t, done, "CloseInput after the call's ctx ended"); !errors.As(err, &e) || e.Code != CodeRequestCancelled {
				t.Fatalf("CloseInput returned %v, want a cancelled request", err)
			}
		})
	}
}

// InStream.Recv takes an item and grants the producer credit for it, which waits for room: when
// its ctx ends meanwhile, Recv returns the item at once, and the credit not sent goes with the next
// grant.
func TestRecvReturnsItsItemWhenItsGrantFindsNoRoom(t *testing.T) {
	t.Parallel()
	type received struct {
		v   any
		err error
	}
	proceed, cancels, got := make(chan struct{}), make(chan context.CancelFunc, 1), make(chan received, 2)
	consume := StreamHandler(func(ctx context.Context, _ Params, in *InStream, _ *OutStream) (any, error) {
		<-proceed
		recvCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		cancels <- cancel
		v, err := in.Recv(recvCtx)
		got <- received{v, err}
		v, err = in.Recv(ctx)
		got <- received{v, err}
		return nil, err
	})
	ch, p := stalledChannel(t, nil, nil)
	if err := ch.Handle("consume", consume, InputWindow(2)); err != nil { // a grant at each item
		t.Fatal(err)
	}
	p.send(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "consume", "params": map[string]any{"$/stream": streamDesc(0, true)}})
	// The window is granted (the peer reads that much) before the queue fills.
	if got := readMethods(t, p.conn, 1); got[0] != "$/stream/credit" {
		t.Fatalf("sent %q, want the window", got)
	}
	p.send(map[string]any{"jsonrpc": "2.0", "method": "$/stream/item", "params": map[string]any{"stream": 1, "dir": "in", "seq": 0, "value": "a"}})
	fillWriteQueue(t, ch)
	close(proceed)
	cancel := <-cancels
	waitFor(t, "the grant to wait for room", func() bool { return waitingForRoom(ch.writer) })
	cancel()
	if r := within(t, got, "Recv after its ctx ended"); r.err != nil || r.v != "a" {
		t.Fatalf("Recv returned %v, %v; want the item", r.v, r.err)
	}
	p.send(map[string]any{"jsonrpc": "2.0", "method": "$/stream/item", "params": map[string]any{"stream": 1, "dir": "in", "seq": 1, "value": "b"}})
	peer := p.listen()
	var adds []any
	for {
		m := peer.next()
		if m["method"] == "$/stream/credit" {
			adds = append(adds, m["params"].(map[string]any)["add"])
		}
		if m["id"] == int64(1) {
			break
		}
	}
	if r := within(t, got, "the second Recv"); r.err != nil || r.v != "b" {
		t.Fatalf("the second Recv returned %v, %v; want the item", r.v, r.err)
	}
	// After the window, one credit for both items: the first one's was never sent.
	if !sameValue(adds, []any{int64(2)}) {
		t.Fatalf("credit granted %v after the window, want [2]", adds)
	}
}

// lockedBuffer is a log destination the test reads while the channel writes to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The $/cancelRequest of a request whose ctx ended is sent in the background, once there is room;
// if the channel closes first, it is dropped, and a debug record says so.
func TestCancelRequestIsDroppedWhenTheChannelCloses(t *testing.T) {
	t.Parallel()
	var log lockedBuffer
	ch, p := stalledChannel(t, nil, slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	answered := make(chan error, 1)
	go func() {
		_, err := ch.Request(ctx, "slow", nil)
		answered <- err
	}()
	// The request is written (the peer reads it, then nothing more), then the queue fills.
	if got := readMethods(t, p.conn, 1); got[0] != "slow" {
		t.Fatalf("sent %q", got)
	}
	fillWriteQueue(t, ch)
	cancel()
	if err := within(t, answered, "the cancelled request"); !errors.Is(err, context.Canceled) {
		t.Fatalf("the request returned %v", err)
	}
	waitFor(t, "$/cancelRequest to wait for room", func() bool { return waitingForRoom(ch.writer) })
	ch.Close()
	waitFor(t, "the debug record", func() bool {
		return strings.Contains(log.String(), "data channel: dropped $/cancelRequest for request 1")
	})
	if text := log.String(); !strings.Contains(text, "level=DEBUG") {
		t.Fatalf("the record is not at debug level:\n%s", text)
	}
}
