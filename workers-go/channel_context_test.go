package aspectipc

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// deafPeer is a channel over a socket pair whose other end reads nothing until told to.
func deafPeer(t *testing.T) (*Channel, *frameReader) {
	t.Helper()
	a, peer := socketPair(t)
	t.Cleanup(func() { peer.Close() })
	ch, err := NewChannelBuilder().WithName("data").WithTransport(a).
		WithFraming(LengthPrefixedFraming{}).WithCodec(MessagePackCodec{}).Build()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch, &frameReader{t: t, conn: peer, dec: LengthPrefixedFraming{}.NewDecoder()}
}

// frameReader reads the messages a channel wrote, as the peer would.
type frameReader struct {
	t    *testing.T
	conn interface{ Read([]byte) (int, error) }
	dec  FrameDecoder
}

func (r *frameReader) next() map[string]any {
	r.t.Helper()
	buf := make([]byte, 1<<20)
	for {
		if frame, err := r.dec.Next(); err == nil {
			v, err := MessagePackCodec{}.Decode(frame)
			if err != nil {
				r.t.Fatal(err)
			}
			return v.(map[string]any)
		}
		n, err := r.conn.Read(buf)
		if err != nil {
			r.t.Fatal(err)
		}
		r.dec.Feed(buf[:n])
	}
}

// Request keeps its deadline against a peer that stops reading: the request being written returns
// at its deadline (the write finishes in the background, then $/cancelRequest follows it), and the
// request queued behind it is taken back out, never sent.
func TestRequestDeadlineWithAPeerThatStopsReading(t *testing.T) {
	t.Parallel()
	ch, peer := deafPeer(t)
	big := bytes.Repeat([]byte{'a'}, 4<<20) // far more than a socket buffer holds
	errs := make(chan error, 2)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := ch.Request(ctx, "writing", []any{big})
		errs <- err
	}()
	for !writerBusy(ch.writer) {
		runtime.Gosched()
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := ch.Request(ctx, "queued", []any{1})
		errs <- err
	}()
	for i := 0; i < 2; i++ {
		select {
		case err := <-errs:
			var rpcErr *Error
			if !errors.As(err, &rpcErr) || rpcErr.Code != CodeRequestTimeout || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("request %d: %v, want a CodeRequestTimeout error", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a request is still held 10 s after its 300 ms deadline by a peer that reads nothing")
		}
	}
	// The $/cancelRequest is sent in the background: the marker is sent once it is queued.
	for queuedMethods(ch.writer) == 0 {
		runtime.Gosched()
	}
	go func() { _ = ch.Notify(context.Background(), "marker", nil) }()
	var methods []string
	for len(methods) == 0 || methods[len(methods)-1] != "marker" {
		methods = append(methods, peer.next()["method"].(string))
	}
	if strings.Join(methods, ",") != "writing,$/cancelRequest,marker" {
		t.Fatalf("the peer received %v, want the written request, its $/cancelRequest, the marker", methods)
	}
}

// queuedMethods counts the frames waiting behind the write in progress.
func queuedMethods(fw *frameWriter) int {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	n := 0
	for q := fw.queue; q != nil; q = q.next {
		n += q.live
	}
	return n
}

// writerBusy reports whether a sender is in charge of writing (blocked by the peer here).
func writerBusy(fw *frameWriter) bool {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.writing
}

// Notify takes a context: ended before the send, nothing is written; a notification queued behind
// a blocked write is taken back out when its context ends.
func TestNotifyTakesAContext(t *testing.T) {
	t.Parallel()
	ch, peer := deafPeer(t)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	var rpcErr *Error
	if err := ch.Notify(done, "never", nil); !errors.As(err, &rpcErr) || rpcErr.Code != CodeRequestCancelled || !errors.Is(err, context.Canceled) {
		t.Fatalf("Notify with an ended context: %v", err)
	}
	blocked := make(chan error, 1)
	go func() { blocked <- ch.Notify(context.Background(), "big", []any{make([]byte, 4<<20)}) }()
	for !writerBusy(ch.writer) {
		runtime.Gosched()
	}
	ctx, stop := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer stop()
	if err := ch.Notify(ctx, "queued", nil); !errors.As(err, &rpcErr) || rpcErr.Code != CodeRequestTimeout {
		t.Fatalf("Notify queued past its deadline: %v", err)
	}
	go func() { _ = ch.Notify(context.Background(), "marker", nil) }()
	var methods []string
	for len(methods) == 0 || methods[len(methods)-1] != "marker" {
		methods = append(methods, peer.next()["method"].(string))
	}
	if strings.Join(methods, ",") != "big,marker" {
		t.Fatalf("the peer received %v, want big then marker only", methods)
	}
	if err := <-blocked; err != nil {
		t.Fatalf("the blocked notification: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The channel reports what it drops to a *slog.Logger, as a warning naming the channel.
func TestChannelLogsToSlog(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	logger := slog.New(slog.NewTextHandler(&out, nil))
	a, b := socketPair(t)
	build := func(name string, conn interface {
		Read([]byte) (int, error)
		Write([]byte) (int, error)
		Close() error
	}, logger *slog.Logger) *Channel {
		ch, err := NewChannelBuilder().WithName(name).WithTransport(conn).WithFraming(LengthPrefixedFraming{}).
			WithCodec(MessagePackCodec{}).WithLogger(logger).Build()
		if err != nil {
			t.Fatal(err)
		}
		go ch.Run(context.Background())
		t.Cleanup(func() { ch.Close() })
		return ch
	}
	build("receiver", a, logger)
	sender := build("sender", b, nil)
	if err := sender.Notify(context.Background(), "unknown", nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), `dropped notification \"unknown\"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no warning logged; the log has:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if line := out.String(); !strings.Contains(line, "level=WARN") || !strings.Contains(line, "channel=receiver") {
		t.Fatalf("log line %q: want a warning with channel=receiver", line)
	}
}
