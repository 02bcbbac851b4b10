package aspectipc

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The memory bounds of PROTOCOL.md 4.5, seen from a parent: what the worker reads while its
// notification handler or its request handlers are busy.

// writtenUntilStalled writes frames to d in the background, and returns how many were written
// once writing has stalled (the worker stopped reading), and where the writer's end is reported.
func writtenUntilStalled(t *testing.T, d *dataConn, frames int, frame func(i int) []byte) (int64, <-chan error) {
	t.Helper()
	var written atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := 0; i < frames; i++ {
			if _, err := d.conn.Write(frame(i)); err != nil {
				done <- err
				return
			}
			written.Add(1)
		}
		done <- nil
	}()
	last, still := int64(-1), 0
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && still < 5; {
		time.Sleep(100 * time.Millisecond)
		n := written.Load()
		if n == int64(frames) {
			break
		}
		if n == last {
			still++
		} else {
			last, still = n, 0
		}
	}
	return written.Load(), done
}

func frameOf(t *testing.T, msg map[string]any) []byte {
	t.Helper()
	payload, err := MessagePackCodec{}.Encode(msg)
	if err != nil {
		t.Fatal(err)
	}
	frame, err := LengthPrefixedFraming{}.Encode(payload)
	if err != nil {
		t.Fatal(err)
	}
	return frame
}

// TestNotificationsWaitingForTheirHandlerAreBounded: while a notification handler is busy, the
// worker reads notifications for it up to 1,024 of them or 16 MiB of their frames, then stops
// reading (the parent's writes wait); once the handler runs on, every notification is handled, in
// order: none was dropped. (Without the bound the worker read 200 notifications of 5 MB, 1 GB.)
func TestNotificationsWaitingForTheirHandlerAreBounded(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name        string
		count, size int
		most        int64 // notifications the worker may have read while blocked
	}{
		{"bytes", 40, 2 << 20, 20},     // 80 MiB sent, 16 MiB queued
		{"count", 3000, 2 << 10, 2000}, // 6 MiB sent, 1,024 queued
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w, d, _ := connectedWorker(t, nil)
			data := make([]byte, c.size)
			written, done := writtenUntilStalled(t, d, c.count, func(i int) []byte {
				return frameOf(t, map[string]any{"jsonrpc": "2.0", "method": "heldNote", "params": map[string]any{"n": i, "data": data}})
			})
			t.Logf("%d of %d notifications read while their handler was blocked", written, c.count)
			if written > c.most {
				t.Fatalf("the worker read %d notifications of %d bytes while their handler was blocked, want at most %d", written, c.size, c.most)
			}
			if reply := w.call(1, "openNoteGate", nil); reply["error"] != nil {
				t.Fatal(reply)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			var log []any
			for deadline := time.Now().Add(20 * time.Second); len(log) < c.count && time.Now().Before(deadline); {
				log = w.call(2, "noteLog", nil)["result"].([]any)
				time.Sleep(20 * time.Millisecond)
			}
			if len(log) != c.count {
				t.Fatalf("%d notifications handled, want %d", len(log), c.count)
			}
			for i, n := range log {
				if n != int64(i) {
					t.Fatalf("notification %d handled as number %v: out of order", i, n)
				}
			}
		})
	}
}

// TestDispatchBoundStopsReading: with MaxConcurrentHandlers 3, the worker starts 3 of 6 slow
// requests and reads the others only as those end; all are answered.
func TestDispatchBoundStopsReading(t *testing.T) {
	t.Parallel()
	w, d, _ := connectedWorker(t, map[string]string{"HELPER_MAX_HANDLERS": "3"})
	for id := 1; id <= 6; id++ {
		d.send(map[string]any{"jsonrpc": "2.0", "id": id, "method": "announceSleep", "params": map[string]any{"seconds": 1}})
	}
	for i := 0; i < 3; i++ {
		if msg := w.readControl(); msg["method"] != "started" {
			t.Fatalf("expected a handler to start, got %v", msg)
		}
	}
	select {
	case line := <-w.lines:
		t.Fatalf("a fourth handler started while three ran: %s", line)
	case <-time.After(500 * time.Millisecond):
	}
	answered := map[any]bool{}
	for len(answered) < 6 {
		msg := d.read()
		if msg == nil || msg["result"] != "done" {
			t.Fatalf("expected an answer, got %v", msg)
		}
		answered[msg["id"]] = true
	}
	for i := 0; i < 3; i++ {
		if msg := w.readControl(); msg["method"] != "started" {
			t.Fatalf("expected a handler to start, got %v", msg)
		}
	}
}

// TestDispatchBoundDoesNotCountHandlersWaitingForTheParent: with MaxConcurrentHandlers 2, five
// handlers that call the parent all get their call out before the parent answers any: a handler
// waiting for its answer gives its place up (otherwise the worker would stop reading after two,
// and a parent that answers once all five called would wait forever).
func TestDispatchBoundDoesNotCountHandlersWaitingForTheParent(t *testing.T) {
	t.Parallel()
	_, d, _ := connectedWorker(t, map[string]string{"HELPER_MAX_HANDLERS": "2"})
	const n = 5
	for id := 1; id <= n; id++ {
		d.send(map[string]any{"jsonrpc": "2.0", "id": id, "method": "callParent", "params": map[string]any{"method": "whoami", "via": "data"}})
	}
	var calls []any
	for len(calls) < n {
		msg := d.read()
		if msg == nil || msg["method"] != "whoami" {
			t.Fatalf("expected the worker's call, got %v", msg)
		}
		calls = append(calls, msg["id"])
	}
	for i, id := range calls {
		d.send(map[string]any{"jsonrpc": "2.0", "id": id, "result": fmt.Sprint("parent ", i)})
	}
	for i := 0; i < n; i++ {
		if msg := d.read(); msg == nil || msg["error"] != nil {
			t.Fatalf("expected an answer, got %v", msg)
		}
	}
}

// TestMaxConcurrentHandlersBelowOneRefusesToStart: Serve refuses a negative bound (0 is the
// default).
func TestMaxConcurrentHandlersBelowOneRefusesToStart(t *testing.T) {
	t.Parallel()
	w := startWorker(t, workerOptions{drainStderr: true, env: map[string]string{"HELPER_MAX_HANDLERS": "-1"}})
	if code := w.waitExit(); code == 0 {
		t.Fatal("the worker started with MaxConcurrentHandlers -1")
	}
	if text := w.stderrText(); !strings.Contains(text, "MaxConcurrentHandlers -1") {
		t.Fatalf("stderr does not say why: %q", text)
	}
}
