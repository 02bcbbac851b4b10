package aspectipc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/outframe"
)

// gateWriter is an io.Writer whose first Write blocks until release is closed, then fails with
// failWith (nil: succeeds). It records every Write, so that tests see how frames were grouped.
type gateWriter struct {
	entered  chan struct{}
	release  chan struct{}
	failWith error

	mu     sync.Mutex
	writes []string
}

func newGateWriter(failWith error) *gateWriter {
	return &gateWriter{entered: make(chan struct{}), release: make(chan struct{}), failWith: failWith}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	first := len(g.writes) == 0
	g.writes = append(g.writes, string(p))
	g.mu.Unlock()
	if first {
		close(g.entered)
		<-g.release
		if g.failWith != nil {
			return 0, g.failWith
		}
	}
	return len(p), nil
}

func (g *gateWriter) recorded() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.writes...)
}

// sendAsync starts fw.write(frame) and returns where its result arrives.
func sendAsync(fw *frameWriter, frame ...[]byte) <-chan error {
	out := make(chan error, 1)
	go func() { out <- fw.write(frame) }()
	return out
}

// waitQueued waits until n slices are queued behind the write in progress.
func waitQueued(t *testing.T, fw *frameWriter, n int) {
	t.Helper()
	for {
		fw.mu.Lock()
		queued := 0
		for q := fw.queue; q != nil; q = q.next {
			queued += len(q.bufs)
		}
		fw.mu.Unlock()
		if queued == n {
			return
		}
		if queued > n {
			t.Fatalf("%d slices queued, want %d", queued, n)
		}
		runtime.Gosched()
	}
}

func returned(results ...<-chan error) bool {
	for _, r := range results {
		select {
		case err := <-r:
			_ = err
			return true
		default:
		}
	}
	return false
}

// TestFrameWriterGroupsFramesQueuedDuringAWrite: frames sent while a write is in progress wait
// (their senders do not return), then go out together in queue order, in one write on a plain
// io.Writer; a frame too large to gather is written as it is, between its neighbours.
func TestFrameWriterGroupsFramesQueuedDuringAWrite(t *testing.T) {
	t.Parallel()
	g := newGateWriter(nil)
	fw := newFrameWriter(g)
	a := sendAsync(fw, []byte("A"))
	<-g.entered
	big := bytes.Repeat([]byte("E"), gatherLimit)
	b := sendAsync(fw, []byte("B1"), []byte("B2"))
	waitQueued(t, fw, 2)
	e := sendAsync(fw, big)
	waitQueued(t, fw, 3)
	c := sendAsync(fw, []byte("C"))
	waitQueued(t, fw, 4)
	d := sendAsync(fw, []byte("D"))
	waitQueued(t, fw, 5)
	if returned(a, b, e, c, d) {
		t.Fatal("a sender returned before its frame was written")
	}
	close(g.release)
	for name, r := range map[string]<-chan error{"A": a, "B": b, "E": e, "C": c, "D": d} {
		if err := <-r; err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	want := []string{"A", "B1B2", string(big), "CD"}
	if got := g.recorded(); !equalStrings(got, want) {
		t.Fatalf("writes %q, want %q", shorten(got), shorten(want))
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func shorten(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		if len(s) > 8 {
			s = s[:4] + "..." + s[len(s)-2:]
		}
		out[i] = s
	}
	return out
}

// TestFrameWriterFailureIsSticky: when a write fails, the frames queued behind it fail with the
// same error, and so does every later write, without touching the stream again (a frame may be
// half written: nothing after it could be read).
func TestFrameWriterFailureIsSticky(t *testing.T) {
	t.Parallel()
	boom := errors.New("broken pipe")
	g := newGateWriter(boom)
	fw := newFrameWriter(g)
	a := sendAsync(fw, []byte("A"))
	<-g.entered
	b := sendAsync(fw, []byte("B"))
	waitQueued(t, fw, 1)
	close(g.release)
	if err := <-a; !errors.Is(err, boom) {
		t.Fatalf("A: %v", err)
	}
	if err := <-b; !errors.Is(err, boom) {
		t.Fatalf("B, queued behind the failed write: %v", err)
	}
	if err := fw.write([][]byte{[]byte("C")}); !errors.Is(err, boom) {
		t.Fatalf("C, after the failure: %v", err)
	}
	if got := g.recorded(); len(got) != 1 {
		t.Fatalf("writes after the failure: %q", got)
	}
}

// TestFrameWriterKeepsEachSendersOrderOnASocket: many senders at once over a real socket (the
// writev path), frames of many sizes in several slices each: every frame arrives whole and each
// sender's frames arrive in the order it sent them.
func TestFrameWriterKeepsEachSendersOrderOnASocket(t *testing.T) {
	t.Parallel()
	a, b := socketPair(t)
	defer a.Close()
	defer b.Close()
	fw := newFrameWriter(a)
	if !fw.vectored {
		t.Fatalf("a %T is not written with writev", a)
	}
	const senders, each = 8, 150
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				body := bytes.Repeat([]byte{byte(s)}, (i*7919+s*104729)%40000)
				head := binary.BigEndian.AppendUint32(nil, uint32(5+len(body)))
				head = append(head, byte(s))
				head = binary.BigEndian.AppendUint32(head, uint32(i))
				half := len(body) / 2
				if err := fw.write([][]byte{head, body[:half], body[half:]}); err != nil {
					t.Error(err)
					return
				}
			}
		}(s)
	}
	next := make([]int, senders)
	var header [4]byte
	for n := 0; n < senders*each; n++ {
		if _, err := io.ReadFull(b, header[:]); err != nil {
			t.Fatal(err)
		}
		frame := make([]byte, binary.BigEndian.Uint32(header[:]))
		if _, err := io.ReadFull(b, frame); err != nil {
			t.Fatal(err)
		}
		s, i := int(frame[0]), int(binary.BigEndian.Uint32(frame[1:5]))
		if s >= senders || i != next[s] {
			t.Fatalf("frame %d of sender %d arrived when %d was expected", i, s, next[s])
		}
		if bytes.Count(frame[5:], []byte{byte(s)}) != len(frame)-5 {
			t.Fatalf("frame %d of sender %d is corrupted", i, s)
		}
		next[s]++
	}
	wg.Wait()
}

// TestChannelSlowReaderBlocksSenders: a peer that does not read makes the senders wait (nothing
// piles up in memory: one frame is being written, one waits in the queue, the third sender waits
// for room before encoding its message); once it reads, every frame arrives whole and every
// sender returns.
func TestChannelSlowReaderBlocksSenders(t *testing.T) {
	t.Parallel()
	a, peer := socketPair(t)
	defer peer.Close()
	ch, err := NewChannelBuilder().WithName("data").WithTransport(a).
		WithFraming(LengthPrefixedFraming{}).WithCodec(MessagePackCodec{}).Build()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	// One sender encodes at a time: which waits where is then certain.
	ch.writer.maxEncoding = 1
	const senders, size = 3, 4 << 20 // far more than a socket buffer holds
	results := make([]<-chan error, senders)
	for s := 0; s < senders; s++ {
		out := make(chan error, 1)
		results[s] = out
		body := bytes.Repeat([]byte{byte('a' + s)}, size)
		go func() { out <- ch.Notify(context.Background(), "chunk", []any{body}) }()
	}
	// One sender writes (blocked by the full socket), one frame waits behind it, and the last
	// sender waits for room.
	for queuedFrames(ch.writer) != 1 || !waitingForRoom(ch.writer) {
		runtime.Gosched()
	}
	if returned(results...) {
		t.Fatal("a sender returned while the peer read nothing")
	}
	seen := map[byte]bool{}
	dec := LengthPrefixedFraming{}.NewDecoder()
	buf := make([]byte, 1<<20)
	for len(seen) < senders {
		n, err := peer.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		dec.Feed(buf[:n])
		for {
			frame, err := dec.Next()
			if err != nil {
				break
			}
			v, err := MessagePackCodec{}.Decode(frame)
			if err != nil {
				t.Fatal(err)
			}
			body := v.(map[string]any)["params"].([]any)[0].([]byte)
			if len(body) != size || bytes.Count(body, body[:1]) != size {
				t.Fatalf("frame %q corrupted", body[:1])
			}
			seen[body[0]] = true
		}
	}
	for s, r := range results {
		if err := <-r; err != nil {
			t.Fatalf("sender %d: %v", s, err)
		}
	}
}

// queuedFrames counts the frames of large binaries waiting behind the write in progress: each has
// one such binary spliced in.
func queuedFrames(fw *frameWriter) int {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	n := 0
	for q := fw.queue; q != nil; q = q.next {
		for _, b := range q.bufs {
			if len(b) >= outframe.RefMinSize {
				n++
			}
		}
	}
	return n
}

// waitingForRoom reports whether a sender waits for room in the write queue (frameWriter.room).
func waitingForRoom(fw *frameWriter) bool {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.roomFreed != nil
}

// TestChannelCloseReleasesBlockedSenders: senders blocked by a peer that does not read return an
// error when the channel closes, and sending afterwards fails with CodeChannelClosed.
func TestChannelCloseReleasesBlockedSenders(t *testing.T) {
	t.Parallel()
	a, peer := socketPair(t)
	defer peer.Close()
	ch, err := NewChannelBuilder().WithName("data").WithTransport(a).
		WithFraming(LengthPrefixedFraming{}).WithCodec(MessagePackCodec{}).Build()
	if err != nil {
		t.Fatal(err)
	}
	results := make([]<-chan error, 2)
	for s := range results {
		out := make(chan error, 1)
		results[s] = out
		go func() { out <- ch.Notify(context.Background(), "chunk", []any{make([]byte, 4<<20)}) }()
	}
	for queuedFrames(ch.writer) != 1 {
		runtime.Gosched()
	}
	ch.Close()
	for s, r := range results {
		select {
		case err := <-r:
			if err == nil {
				t.Fatalf("sender %d: no error although nothing was read", s)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("sender %d still blocked after Close", s)
		}
	}
	var rpcErr *Error
	if err := ch.Notify(context.Background(), "late", nil); !errors.As(err, &rpcErr) || rpcErr.Code != CodeChannelClosed {
		t.Fatalf("after Close: %v", err)
	}
}

// TestMessagePackEncodeIntoMatchesEncode: the frame built in place, large binaries spliced in, has
// exactly the bytes of Encode then LengthPrefixedFraming.Encode, and the binaries are not copied.
func TestMessagePackEncodeIntoMatchesEncode(t *testing.T) {
	t.Parallel()
	large := bytes.Repeat([]byte{7}, outframe.RefMinSize)
	values := map[string]any{
		"small":           map[string]any{"jsonrpc": "2.0", "id": int64(1), "result": []any{int64(1), "x"}},
		"bin just small":  []any{bytes.Repeat([]byte{1}, outframe.RefMinSize-1)},
		"bin spliced":     []any{large},
		"several spliced": map[string]any{"a": large, "b": []any{"mid", large, int64(-5)}, "c": large[:outframe.RefMinSize/2]},
		"struct":          sample{Blob: large},
	}
	for name, v := range values {
		payload, err := MessagePackCodec{}.Encode(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, _ := LengthPrefixedFraming{}.Encode(payload)
		f := outframe.Get(4)
		if err := (MessagePackCodec{}).encodeInto(f, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := (LengthPrefixedFraming{}).frameInPlace(f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := bytes.Join(f.Vectors(), nil); !bytes.Equal(got, want) {
			t.Fatalf("%s: built in place %x, want %x", name, got[:min(len(got), 40)], want[:min(len(want), 40)])
		}
		if name == "bin spliced" || name == "several spliced" {
			found := false
			for _, part := range f.Vectors() {
				found = found || &part[0] == &large[0]
			}
			if !found {
				t.Fatalf("%s: the large binary was copied, not spliced", name)
			}
		}
		f.Release()
	}
}

// newlineCodec is a codec of the caller's own that puts what it is given as is in the payload.
type newlineCodec struct{}

func (newlineCodec) Name() string { return "raw" }
func (newlineCodec) Encode(v any) ([]byte, error) {
	return []byte(v.(map[string]any)["method"].(string)), nil
}
func (newlineCodec) Decode(payload []byte) (any, error) { return nil, errors.New("not used") }

// TestChannelFramingErrorsWithAForeignCodec: with a codec that cannot build in place, the payload
// is still checked by the framing before anything is written: a newline inside a line, or a line
// over the limit, fails the send with the framing's error.
func TestChannelFramingErrorsWithAForeignCodec(t *testing.T) {
	t.Parallel()
	a, peer := socketPair(t)
	defer peer.Close()
	ch, err := NewChannelBuilder().WithTransport(a).WithFraming(LineDelimitedFraming{MaxLineLength: 10}).
		WithCodec(newlineCodec{}).Build()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	for method, kind := range map[string]FramingErrorKind{"two\nlines": InvalidLine, strings.Repeat("x", 11): LineTooLong} {
		var fe *FramingError
		if err := ch.Notify(context.Background(), method, nil); !errors.As(err, &fe) || fe.Kind != kind {
			t.Fatalf("%q: %v, want a %s framing error", method, err, kind)
		}
	}
	if err := ch.Notify(context.Background(), "fits", nil); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 5)
	if _, err := io.ReadFull(peer, line); err != nil || string(line) != "fits\n" {
		t.Fatalf("peer read %q, %v: the failed sends must write nothing", line, err)
	}
}

// TestHandlersAreNotLimitedByReuse: goroutines are reused for handlers, but never limit how many
// run at once: every one of many requests whose handlers wait for each other completes.
func TestHandlersAreNotLimitedByReuse(t *testing.T) {
	t.Parallel()
	const n = 200
	var mu sync.Mutex
	started := 0
	all := make(chan struct{})
	server := HandlerTable{"meet": func(ctx context.Context, _ Params) (any, error) {
		mu.Lock()
		started++
		if started == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
			return "met", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}}
	client, _ := channelPair(t, LengthPrefixedFraming{}, MessagePackCodec{}, nil, server)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res, err := client.Request(ctx, "meet", nil); err != nil || res.Value() != "met" {
				t.Errorf("meet: %v, %v", res.Value(), err)
			}
		}()
	}
	wg.Wait()
}
