//go:build unix

package aspectipc

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The authenticated data connection reads and writes with blocking system calls
// (conn_blocking_unix.go): a thread parked in the kernel on it must still be woken whenever the
// worker ends, for the worker to exit. These tests park one each way and end the worker.

func TestWorkerExitsWhileItsDataReadIsParked(t *testing.T) {
	t.Parallel()
	w, d, path := connectedWorker(t, nil)
	if r := d.call(2, "echo", []any{"x"}); !sameValue(r["result"], []any{"x"}) {
		t.Fatalf("echo: %v", r)
	}
	time.Sleep(50 * time.Millisecond) // the reader is parked in read(2): nothing more comes
	endAndExpectExit(t, w, path)
	d.expectEOF()
}

// connectedWorker starts a worker with env added to its environment and opens an authenticated
// data connection to it; it returns the worker, the connection and the socket's path.
func connectedWorker(t *testing.T, env map[string]string) (*workerProcess, *dataConn, string) {
	t.Helper()
	w, path := readyWorker(t, env)
	return w, w.connect(), path
}

// readyWorker starts a worker with env added to its environment and reads its $/ready; it
// returns the worker and its socket's path.
func readyWorker(t *testing.T, env map[string]string) (*workerProcess, string) {
	t.Helper()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true, env: env})
	w.ready()
	return w, path
}

// endAndExpectExit closes the worker's stdin (it shuts down, PROTOCOL.md 8.3) and expects it to
// exit with 0 and remove its socket file.
func endAndExpectExit(t *testing.T, w *workerProcess, path string) {
	t.Helper()
	w.stdin.Close()
	if code := w.waitExit(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the socket file is still there: %v", err)
	}
}

func TestWorkerExitsWhileItsDataWriteIsParked(t *testing.T) {
	for _, inline := range []string{"", "repeat"} {
		t.Run("inline="+inline, func(t *testing.T) {
			t.Parallel()
			w, d, path := connectedWorker(t, map[string]string{"HELPER_INLINE": inline})
			// 16 answers of 1 MiB, never read: far more than both sockets' buffers hold, so
			// the worker's write parks in write(2) until something wakes it.
			for id := 2; id < 18; id++ {
				d.send(map[string]any{"jsonrpc": "2.0", "id": id, "method": "repeat",
					"params": map[string]any{"n": 1 << 20}})
			}
			time.Sleep(200 * time.Millisecond)
			endAndExpectExit(t, w, path)
		})
	}
}

// With the read parked in the kernel and a single processor (GOMAXPROCS=1: the parked thread
// holds the only one), work that becomes ready later still runs: handlers woken by a timer, an
// inline one between them, and a handler cancelled by a message read after a quiet spell.
func TestWorkerHandlersRunWhileItsDataReadIsParked(t *testing.T) {
	for _, procs := range []string{"1", "2"} {
		t.Run("GOMAXPROCS="+procs, func(t *testing.T) {
			t.Parallel()
			w, d, _ := connectedWorker(t, map[string]string{"GOMAXPROCS": procs, "HELPER_INLINE": "echo"})
			d.send(map[string]any{"jsonrpc": "2.0", "id": 2, "method": "sleep", "params": map[string]any{"seconds": 0.2}})
			d.send(map[string]any{"jsonrpc": "2.0", "id": 3, "method": "sleep", "params": map[string]any{"seconds": 60}})
			d.send(map[string]any{"jsonrpc": "2.0", "id": 4, "method": "echo", "params": []any{"inline"}})
			d.send(map[string]any{"jsonrpc": "2.0", "id": 5, "method": "sleep", "params": map[string]any{"seconds": 0.05}})
			answers := map[int64]map[string]any{}
			for len(answers) < 3 {
				r := d.read()
				if r == nil {
					t.Fatalf("connection closed; answers so far %v", answers)
				}
				answers[r["id"].(int64)] = r
			}
			if !sameValue(answers[4]["result"], []any{"inline"}) || answers[2]["result"] != "done" || answers[5]["result"] != "done" {
				t.Fatalf("answers: %v", answers)
			}
			time.Sleep(100 * time.Millisecond) // nothing arrives: the read loop parks again
			d.send(map[string]any{"jsonrpc": "2.0", "method": "$/cancelRequest", "params": map[string]any{"id": 3}})
			if r := d.read(); r["id"] != int64(3) || errorCode(t, r) != CodeRequestCancelled {
				t.Fatalf("cancelled request answered %v", r)
			}
			if note := w.readControl(); note["method"] != "cancelObserved" {
				t.Fatalf("expected cancelObserved, got %v", note)
			}
		})
	}
}
