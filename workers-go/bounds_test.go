package aspectipc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countedValue is a value whose encoding is counted: a JSON string of size bytes, which the data
// channel writes as a MessagePack string (a copy, unlike a large []byte, which is spliced in).
type countedValue struct {
	size    int
	encoded *atomic.Int64
}

func (v countedValue) MarshalJSON() ([]byte, error) {
	v.encoded.Add(1)
	return []byte(strconv.Quote(strings.Repeat("s", v.size))), nil
}

// deafDataChannel is a data channel whose peer reads nothing until the test reads from peer.
func deafDataChannel(t *testing.T) (*Channel, io.Reader) {
	t.Helper()
	a, peer := socketPair(t)
	ch, err := NewChannelBuilder().WithName("data").WithTransport(a).
		WithFraming(LengthPrefixedFraming{}).WithCodec(MessagePackCodec{}).Build()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close(); peer.Close() })
	return ch, peer
}

// readMethods reads n frames from r and returns the method of each.
func readMethods(t *testing.T, r io.Reader, n int) []string {
	t.Helper()
	dec := LengthPrefixedFraming{MaxFrameSize: 1 << 30}.NewDecoder()
	buf := make([]byte, 1<<20)
	var methods []string
	for len(methods) < n {
		frame, err := dec.Next()
		if err != nil {
			k, rerr := r.Read(buf)
			if rerr != nil {
				t.Fatalf("after %d frames: %v", len(methods), rerr)
			}
			dec.Feed(buf[:k])
			continue
		}
		v, err := MessagePackCodec{}.Decode(frame)
		if err != nil {
			t.Fatal(err)
		}
		method, _ := v.(map[string]any)["method"].(string)
		methods = append(methods, method)
	}
	return methods
}

// TestSendersWaitForRoomBeforeEncoding: with a peer that reads nothing, 50 senders of a 1 MB value
// do not each encode it and queue the copy (50 MB): one frame is being written, a few wait in the
// queue, and the other senders wait for room with their messages unencoded (PROTOCOL.md 2.6, 4.5).
// Once the peer reads, every message arrives.
func TestSendersWaitForRoomBeforeEncoding(t *testing.T) {
	t.Parallel()
	ch, peer := deafDataChannel(t)
	var encoded atomic.Int64
	const senders, size = 50, 1 << 20
	results := make(chan error, senders)
	for i := 0; i < senders; i++ {
		go func() {
			v := countedValue{size: size, encoded: &encoded}
			if i%2 == 0 {
				results <- ch.Notify(context.Background(), "note", []any{v})
			} else {
				_, err := ch.Request(context.Background(), "call", []any{v})
				results <- err
			}
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); !waitingForRoom(ch.writer) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // what could still be encoded, is
	if n, most := encoded.Load(), int64(1+ch.writer.maxEncoding); n > most {
		t.Fatalf("%d messages of 1 MB encoded for a peer that reads nothing, want at most %d", n, most)
	}
	methods := readMethods(t, peer, senders)
	notes := 0
	for _, m := range methods {
		if m == "note" {
			notes++
		}
	}
	if notes != senders/2 {
		t.Fatalf("%d notifications of %d arrived", notes, senders/2)
	}
	for i := 0; i < senders/2; i++ { // the notifications' senders; the requests wait for answers
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
}

// TestRequestThatFindsNoRoomIsNeverSent: a request whose ctx ends while it waits for room in the
// write queue returns ctx's error (CodeRequestTimeout) and is never encoded nor sent, as one
// withdrawn from the queue.
func TestRequestThatFindsNoRoomIsNeverSent(t *testing.T) {
	t.Parallel()
	ch, peer := deafDataChannel(t)
	ch.writer.maxEncoding = 1
	big := strings.Repeat("b", 4<<20)
	for i := 0; i < 2; i++ { // one being written, one queued: more than queueLimit waits
		go func() { _ = ch.Notify(context.Background(), "fill", []any{big}) }()
	}
	for queuedBytes(ch.writer) <= queueLimit {
		runtime.Gosched()
	}
	var encoded atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := ch.Request(ctx, "late", []any{countedValue{size: 10, encoded: &encoded}})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeRequestTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a request timeout, got %v", err)
	}
	if encoded.Load() != 0 {
		t.Fatal("the request was encoded although it never found room")
	}
	after := make(chan error, 1)
	go func() { after <- ch.Notify(context.Background(), "after", nil) }()
	if got := readMethods(t, peer, 3); !equalStrings(got, []string{"fill", "fill", "after"}) {
		t.Fatalf("sent %q", got)
	}
	if err := <-after; err != nil {
		t.Fatal(err)
	}
}

// queuedBytes is the bytes waiting in the write queue.
func queuedBytes(fw *frameWriter) int {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.queued
}

// TestWriterTakesABoundedBatch: a write takes at most queueLimit bytes of the queue (or one larger
// frame); what is left stays queued and counted, and goes out in the next write.
func TestWriterTakesABoundedBatch(t *testing.T) {
	t.Parallel()
	g := &gateVectors{gateWriter: newGateWriter(nil)}
	fw := newFrameWriter(g)
	first := sendAsync(fw, []byte("W"))
	<-g.entered
	chunk := bytes.Repeat([]byte("q"), queueLimit/2)
	var results []<-chan error
	for i := 0; i < 4; i++ {
		results = append(results, sendAsync(fw, chunk))
		waitQueued(t, fw, i+1)
	}
	if got := queuedBytes(fw); got != 4*len(chunk) {
		t.Fatalf("%d bytes queued, want %d", got, 4*len(chunk))
	}
	close(g.release)
	for _, r := range append(results, first) {
		if err := <-r; err != nil {
			t.Fatal(err)
		}
	}
	var sizes []int
	for _, w := range g.recorded() {
		sizes = append(sizes, len(w))
	}
	want := []int{1, 2 * len(chunk), 2 * len(chunk)}
	if len(sizes) != len(want) || sizes[0] != want[0] || sizes[1] != want[1] || sizes[2] != want[2] {
		t.Fatalf("writes of %v bytes, want %v", sizes, want)
	}
}

// gateVectors is a gateWriter with a writev of its own, recording each call's slices as one write.
type gateVectors struct{ *gateWriter }

func (g *gateVectors) writeVectors(bufs [][]byte) (int, error) {
	return g.Write(bytes.Join(bufs, nil))
}

// TestDispatchBoundDoesNotCountHandlersWaitingForItems: with a bound of 2, four requests whose
// input items the caller sends only once all four are sent all complete: a handler waiting for
// its stream's items gives its place up (otherwise the read loop would stop at the third request,
// before the items the first two wait for).
func TestDispatchBoundDoesNotCountHandlersWaitingForItems(t *testing.T) {
	t.Parallel()
	a, b := socketPair(t)
	server, err := NewChannelBuilder().WithName("data").WithTransport(a).WithFraming(LengthPrefixedFraming{}).
		WithCodec(MessagePackCodec{}).WithHandlers(streamHandlers).WithMaxConcurrentHandlers(2).Build()
	if err != nil {
		t.Fatal(err)
	}
	client, err := NewChannelBuilder().WithName("data").WithTransport(b).WithFraming(LengthPrefixedFraming{}).
		WithCodec(MessagePackCodec{}).Build()
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []*Channel{server, client} {
		go ch.Run(context.Background())
		t.Cleanup(func() { ch.Close() })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var calls []*StreamCall
	for i := 0; i < 4; i++ {
		call, err := client.RequestStream(ctx, "sumStream", nil, StreamOptions{In: true})
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, call)
	}
	for i, call := range calls {
		for _, n := range []int64{int64(i), 10} {
			if err := call.In.Send(ctx, n); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		if err := call.CloseInput(); err != nil {
			t.Fatal(err)
		}
	}
	for i, call := range calls {
		r, err := call.Result(ctx)
		if err != nil || r.Value() != int64(i+10) {
			t.Fatalf("call %d: %v, %v", i, r.Value(), err)
		}
	}
}

// TestMaxConcurrentHandlersMustBePositive: the builder refuses a bound below 1.
func TestMaxConcurrentHandlersMustBePositive(t *testing.T) {
	t.Parallel()
	a, _ := socketPair(t)
	_, err := NewChannelBuilder().WithTransport(a).WithFraming(LengthPrefixedFraming{}).
		WithCodec(MessagePackCodec{}).WithMaxConcurrentHandlers(0).Build()
	if err == nil || !strings.Contains(err.Error(), "MaxConcurrentHandlers 0") {
		t.Fatalf("want an error naming the bound, got %v", err)
	}
}
