//go:build unix

package aspectipc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
)

// A sender with a ctx that can end, finding no write in progress on a blocked data connection,
// writes its frame without waiting when the socket has room for it, and hands the write to a
// goroutine (which it can walk away from when its ctx ends) only when the socket does not take
// it all: frame_writer_try.go. The writer counts the writes it hands over (detached).

// blockedChannel is a data channel over a blocked connection (conn_blocking_unix.go), running
// when run is set, and the other end of its socket.
func blockedChannel(t *testing.T, handlers HandlerTable, run bool) (*Channel, *net.UnixConn) {
	t.Helper()
	conn, peer := blockedPair(t)
	ch, err := NewChannelBuilder().WithName("data").WithTransport(conn).WithFraming(LengthPrefixedFraming{}).
		WithCodec(MessagePackCodec{}).WithHandlers(handlers).Build()
	if err != nil {
		t.Fatal(err)
	}
	if run {
		go ch.Run(context.Background())
	}
	t.Cleanup(func() { ch.Close() })
	return ch, peer
}

// Stream items, notifications and requests with a live ctx, each small enough for the socket,
// reach the peer in order without a goroutine writing any of them.
func TestSendsWithALiveCtxThatFitTheSocketAreWrittenInPlace(t *testing.T) {
	t.Parallel()
	ch, conn := blockedChannel(t, streamHandlers, true)
	peer := wrapStreamPeer(t, conn)
	peer.request(5, "countTo", map[string]any{"n": 20, "$/stream": streamDesc(20, false)})
	for i := int64(0); i < 20; i++ {
		if item := peer.nextItem(5); item["seq"] != i || item["value"] != i {
			t.Fatalf("item %d: %v", i, item)
		}
	}
	if m := peer.next(); m["id"] != int64(5) || m["result"] == nil {
		t.Fatalf("want countTo's result, got %v", m)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := ch.Notify(ctx, "note", map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if m := peer.next(); m["method"] != "note" {
		t.Fatalf("want the notification, got %v", m)
	}
	answered := make(chan error, 1)
	go func() {
		result, err := ch.Request(ctx, "ask", nil)
		if err == nil && result.Value() != "yes" {
			err = fmt.Errorf("result %v", result.Value())
		}
		answered <- err
	}()
	m := peer.next()
	if m["method"] != "ask" {
		t.Fatalf("want the request, got %v", m)
	}
	peer.send(map[string]any{"jsonrpc": "2.0", "id": m["id"], "result": "yes"})
	if err := within(t, answered, "the request's answer"); err != nil {
		t.Fatal(err)
	}
	if n := ch.writer.detached.Load(); n != 0 {
		t.Fatalf("%d writes went through a goroutine, want none", n)
	}
}

// A connection that cannot write without waiting (not blocked yet: on the poller) keeps the
// goroutine.
func TestSendWithALiveCtxBeforeBlockUsesTheGoroutine(t *testing.T) {
	t.Parallel()
	conn, peer := connPair(t)
	fw := newFrameWriter(conn)
	cancel := make(chan struct{})
	if err := fw.writeOr([][]byte{[]byte("frame")}, cancel, nil); err != nil {
		t.Fatal(err)
	}
	if n := fw.detached.Load(); n != 1 {
		t.Fatalf("%d writes went through a goroutine, want 1", n)
	}
	buf := make([]byte, 5)
	if _, err := peer.Read(buf); err != nil || string(buf) != "frame" {
		t.Fatalf("the peer read %q, %v", buf, err)
	}
}

// Frames held back by the read loop go first, in the same write, when a frame is written in place.
func TestHeldFramesGoFirstWhenAFrameIsWrittenInPlace(t *testing.T) {
	t.Parallel()
	conn, peer := blockedPair(t)
	fw := newFrameWriter(conn)
	if err := fw.hold([][]byte{[]byte("held,")}); err != nil {
		t.Fatal(err)
	}
	if err := fw.writeOr([][]byte{[]byte("sent")}, make(chan struct{}), nil); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 9)
	n, err := peer.Read(buf)
	if err != nil || string(buf[:n]) != "held,sent" || fw.detached.Load() != 0 {
		t.Fatalf("the peer read %q, %v; %d writes through a goroutine", buf[:n], err, fw.detached.Load())
	}
}

// A frame larger than the socket holds, to a peer that reads nothing yet: the socket takes what it
// can at once, a goroutine writes the rest, and the sender whose ctx ends meanwhile walks away
// (the frame will still arrive). The peer then receives it whole and once, then what followed.
func TestSendWithCtxLargerThanTheSocketIsWrittenOnce(t *testing.T) {
	t.Parallel()
	ch, conn := blockedChannel(t, nil, true)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB: far more than a socket buffer
	ctx, cancel := context.WithCancel(context.Background())
	sent := make(chan error, 1)
	go func() { sent <- ch.Notify(ctx, "big", []any{big}) }()
	waitFor(t, "the write to go to a goroutine", func() bool { return ch.writer.detached.Load() == 1 })
	cancel()
	err := within(t, sent, "Notify after its ctx ended")
	var rpcErr *Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != CodeRequestCancelled || !errors.Is(err, context.Canceled) {
		t.Fatalf("Notify whose ctx ended mid-write: %v", err)
	}
	after := make(chan error, 1)
	go func() { after <- ch.Notify(context.Background(), "after", nil) }()
	peer := wrapStreamPeer(t, conn)
	m := peer.next()
	params, _ := m["params"].([]any)
	if m["method"] != "big" || len(params) != 1 || !bytes.Equal(asBytes(params[0]), big) {
		t.Fatalf("the first message is not the 8 MiB notification intact: method %v", m["method"])
	}
	if m := peer.next(); m["method"] != "after" {
		t.Fatalf("want the next notification after it, got %v", m)
	}
	if err := within(t, after, "the next notification"); err != nil {
		t.Fatal(err)
	}
}

func asBytes(v any) []byte {
	switch b := v.(type) {
	case []byte:
		return b
	case string:
		return []byte(b)
	}
	return nil
}

// A write that fails without waiting (the peer has gone) fails the channel, as any failed write.
func TestSendWithCtxToAGonePeerEndsTheChannel(t *testing.T) {
	t.Parallel()
	ch, peer := blockedChannel(t, nil, false) // not running: only the write can see the peer go
	peer.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := ch.Notify(ctx, "note", nil)
	if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Notify to a gone peer: %v, want the write's failure", err)
	}
	within(t, ch.Done(), "the channel to close")
	if n := ch.writer.detached.Load(); n != 0 {
		t.Fatalf("%d writes went through a goroutine, want none", n)
	}
}

// Concurrent senders with live ctxs, frames small and larger than the socket, a peer reading:
// every frame arrives whole, and each sender's in its order.
func TestConcurrentSendsWithCtxNeverInterleave(t *testing.T) {
	t.Parallel()
	ch, conn := blockedChannel(t, nil, true)
	peer := wrapStreamPeer(t, conn)
	const senders, each = 6, 30
	payload := func(from, seq int) []byte {
		size := 64
		if seq%5 == 0 {
			size = 300 << 10 // more than the socket takes at once
		}
		return bytes.Repeat([]byte{byte(from*each + seq)}, size)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for from := 0; from < senders; from++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; seq < each; seq++ {
				if err := ch.Notify(ctx, "n", map[string]any{"from": from, "seq": seq, "data": payload(from, seq)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	next := make([]int64, senders)
	for i := 0; i < senders*each; i++ {
		p, _ := peer.next()["params"].(map[string]any)
		from, _ := p["from"].(int64)
		seq, _ := p["seq"].(int64)
		if from < 0 || from >= senders || seq != next[from] || !bytes.Equal(asBytes(p["data"]), payload(int(from), int(seq))) {
			t.Fatalf("message %d: from %v seq %v (want seq %d), %d bytes of data", i, p["from"], p["seq"], next[from], len(asBytes(p["data"])))
		}
		next[from]++
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// tryGate is a writer that can write without waiting: its try takes everything, once release is
// closed; its writes that wait block until unblock is closed (a peer that stopped reading).
type tryGate struct {
	entered, release, unblock chan struct{}

	mu     sync.Mutex
	writes []string
}

func (g *tryGate) tryWriteVectors(bufs [][]byte) ([][]byte, bool, error) {
	close(g.entered)
	<-g.release
	g.record(bufs)
	return nil, true, nil
}

func (g *tryGate) writeVectors(bufs [][]byte) (int, error) {
	<-g.unblock
	return g.record(bufs), nil
}

func (g *tryGate) Write(p []byte) (int, error) { return g.writeVectors([][]byte{p}) }

func (g *tryGate) record(bufs [][]byte) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := string(bytes.Join(bufs, nil))
	g.writes = append(g.writes, w)
	return len(w)
}

// A sender whose frame was written in place returns without writing the frames held back that
// were queued behind it meanwhile (a read loop waiting for room queues them): that write may wait
// for a peer that stopped reading, so a goroutine makes it.
func TestFrameWrittenInPlaceLeavesTheHeldFramesBehindItToAGoroutine(t *testing.T) {
	t.Parallel()
	g := &tryGate{entered: make(chan struct{}), release: make(chan struct{}), unblock: make(chan struct{})}
	fw := newFrameWriter(g)
	sent := make(chan error, 1)
	go func() { sent <- fw.writeOr([][]byte{[]byte("sent")}, make(chan struct{}), nil) }()
	<-g.entered // the sender is in charge of writing
	if err := fw.hold([][]byte{[]byte("held")}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < fw.maxEncoding; i++ { // no room left: the next room call waits
		if err := fw.room(nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	stopWaiting := make(chan struct{})
	waited := make(chan error, 1)
	go func() { waited <- fw.room(stopWaiting, nil) }()
	waitQueued(t, fw, 1) // room queued the held frame before it waited
	close(stopWaiting)
	if err := within(t, waited, "room"); !errors.Is(err, errWithdrawn) {
		t.Fatalf("room: %v", err)
	}
	close(g.release)
	if err := within(t, sent, "the sender whose frame was written in place"); err != nil {
		t.Fatal(err)
	}
	close(g.unblock)
	if err := fw.write([][]byte{[]byte("after")}); err != nil { // queued behind the held frame, if still there
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if got := fmt.Sprint(g.writes); got != "[sent held after]" {
		t.Fatalf("writes %s, want [sent held after]", got)
	}
}
