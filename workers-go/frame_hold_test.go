package aspectipc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
)

// A held frame goes out with the next write, whoever makes it, ahead of that write's frame; a
// release with nothing held writes nothing.
func TestFrameWriterHeldFramesGoFirstInTheNextWrite(t *testing.T) {
	t.Parallel()
	g := newGateWriter(nil)
	close(g.release)
	fw := newFrameWriter(g)
	for _, f := range []string{"A", "B"} {
		if err := fw.hold([][]byte{[]byte(f)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := g.recorded(); len(got) != 0 {
		t.Fatalf("held frames were written at once: %q", got)
	}
	if err := <-sendAsync(fw, []byte("C")); err != nil {
		t.Fatal(err)
	}
	if err := fw.hold([][]byte{[]byte("D1"), []byte("D2")}); err != nil {
		t.Fatal(err)
	}
	if err := fw.release(); err != nil {
		t.Fatal(err)
	}
	if err := fw.release(); err != nil {
		t.Fatal(err)
	}
	if got, want := g.recorded(), []string{"ABC", "D1D2"}; !equalStrings(got, want) {
		t.Fatalf("writes %q, want %q", got, want)
	}
}

// A frame over holdFrameLimit, or one that would take what is held over holdLimit, is written at
// once, after what is held.
func TestFrameWriterHoldWritesLargeFramesAtOnce(t *testing.T) {
	t.Parallel()
	g := newGateWriter(nil)
	close(g.release)
	fw := newFrameWriter(g)
	big := bytes.Repeat([]byte("L"), holdFrameLimit+1)
	if err := fw.hold([][]byte{[]byte("A")}); err != nil {
		t.Fatal(err)
	}
	if err := fw.hold([][]byte{big}); err != nil {
		t.Fatal(err)
	}
	if got, want := g.recorded(), []string{"A" + string(big)}; !equalStrings(got, want) {
		t.Fatalf("writes %q, want %q", shorten(got), shorten(want))
	}
	medium := bytes.Repeat([]byte("m"), holdFrameLimit)
	for i := 0; i < holdLimit/holdFrameLimit+1; i++ {
		if err := fw.hold([][]byte{medium}); err != nil {
			t.Fatal(err)
		}
	}
	written := 0
	for _, w := range g.recorded() {
		written += len(w)
	}
	fw.mu.Lock()
	held := len(fw.held)
	fw.mu.Unlock()
	if want := 1 + len(big) + (holdLimit/holdFrameLimit+1)*holdFrameLimit; written != want || held != 0 {
		t.Fatalf("%d bytes written and %d held after going over holdLimit, want %d and 0", written, held, want)
	}
}

// A held frame is never withdrawn with a cancelled sender's frame queued beside it: it was
// written as far as its writer knows.
func TestFrameWriterHeldFrameSurvivesAWithdrawnFrame(t *testing.T) {
	t.Parallel()
	g := newGateWriter(nil)
	fw := newFrameWriter(g)
	first := sendAsync(fw, []byte("W"))
	<-g.entered
	if err := fw.hold([][]byte{[]byte("H")}); err != nil {
		t.Fatal(err)
	}
	cancel := make(chan struct{})
	withdrawn := make(chan error, 1)
	go func() { withdrawn <- fw.writeOr([][]byte{[]byte("X")}, cancel, nil) }()
	waitQueued(t, fw, 2) // H, then X
	close(cancel)
	if err := <-withdrawn; err != errWithdrawn {
		t.Fatalf("the cancelled frame: %v, want errWithdrawn", err)
	}
	close(g.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := fw.release(); err != nil {
		t.Fatal(err)
	}
	if got, want := g.recorded(), []string{"W", "H"}; !equalStrings(got, want) {
		t.Fatalf("writes %q, want %q", got, want)
	}
}

// countingConn counts the writes made on a connection (not a *net.UnixConn, so the channel
// gathers each write's frames into one Write).
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countingConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// The responses of InlineGrouped handlers to the requests one read brought in go out in one
// write (those of plain Inline ones, one write each); $/ping is answered too, and every response
// arrives.
func TestInlineResponsesToOneReadShareAWrite(t *testing.T) {
	t.Parallel()
	for _, grouped := range []bool{true, false} {
		option, want := InlineGrouped(), 1
		if !grouped {
			option, want = Inline(), 50
		}
		t.Run(fmt.Sprint("grouped=", grouped), func(t *testing.T) { answersShareWrites(t, option, want) })
	}
}

func answersShareWrites(t *testing.T, option HandlerOption, wantWrites int) {
	a, peer := socketPair(t)
	t.Cleanup(func() { peer.Close() })
	counting := &countingConn{Conn: a}
	ch, err := NewChannelBuilder().WithName("data").WithTransport(counting).
		WithFraming(LengthPrefixedFraming{}).WithCodec(MessagePackCodec{}).
		WithHandler("echo", echoHandler, option).Build()
	if err != nil {
		t.Fatal(err)
	}
	go ch.Run(context.Background())
	t.Cleanup(func() { ch.Close() })
	p := &inlinePeer{t: t, server: ch, conn: peer, in: &frameReader{t: t, conn: peer, dec: LengthPrefixedFraming{}.NewDecoder()}}
	const n = 50
	var burst []map[string]any
	for i := int64(1); i <= n; i++ {
		burst = append(burst, request(i, "echo", []any{i}))
	}
	p.send(burst...)
	for i := int64(1); i <= n; i++ {
		if r := p.in.next(); r["id"] != i {
			t.Fatalf("response %d: %v", i, r)
		}
	}
	if w := counting.count(); w != wantWrites {
		t.Fatalf("%d writes for the responses to one read of %d inline requests, want %d", w, n, wantWrites)
	}
	p.send(request(int64(n+1), "echo", []any{1}), request(int64(n+2), "$/ping", nil), request(int64(n+3), "echo", []any{3}))
	for _, id := range []int64{n + 1, n + 2, n + 3} {
		if r := p.in.next(); r["id"] != id {
			t.Fatalf("want the response to %d, got %v", id, r)
		}
	}
}

// An inline handler that blocks past the shutdown timeout (against Inline's rules) does not keep
// back the responses held before it, from the same read: shutdown writes them (here a
// notification's handler, which has no response of its own that would take them along).
func TestShutdownWritesHeldResponses(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true,
		env: map[string]string{"HELPER_INLINE": "echo,announceSleep", "HELPER_INLINE_GROUPED": "1"}})
	w.ready()
	d := w.connect()
	var both []byte
	for _, m := range []map[string]any{
		{"jsonrpc": "2.0", "id": 2, "method": "echo", "params": []any{"held"}},
		{"jsonrpc": "2.0", "method": "announceSleep", "params": map[string]any{"seconds": 3}}, // no answer to flush them
	} {
		payload, err := MessagePackCodec{}.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		frame, _ := LengthPrefixedFraming{}.Encode(payload)
		both = append(both, frame...)
	}
	d.writeRaw(both) // one write: the two requests are read together
	if note := w.readControl(); note["method"] != "started" {
		t.Fatalf("want the started notification, got %v", note)
	}
	w.sendControl(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "$/shutdown", "params": map[string]any{"timeout": 0.2}})
	if r := d.read(); r["id"] != int64(2) || !sameValue(r["result"], []any{"held"}) {
		t.Fatalf("the response held before the blocked handler: %v", r)
	}
}
