package aspectipc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Process tests of how the worker stops (PROTOCOL.md 8): the shutdown order, the exit time, the
// processes it started, a broken stderr.

// exitBudget is the bound of PROTOCOL.md 8.3/8.4 (200 ms from the event to the exit, on an idle
// machine) with a margin for a loaded one running the race detector: a worker that waits for a
// handler deaf to cancellation, or for the 500 ms cancel grace, still fails it.
const exitBudget = 400 * time.Millisecond

// exitedAfter waits for the worker to exit and returns its exit code and the time since start.
func (w *workerProcess) exitedAfter(start time.Time) (int, time.Duration) {
	w.t.Helper()
	select {
	case <-w.exited:
	case <-time.After(10 * time.Second):
		w.t.Fatalf("worker did not exit within 10 s; stderr:\n%s", w.stderrText())
	}
	elapsed := time.Since(start)
	var exitErr *exec.ExitError
	if errors.As(w.exitErr, &exitErr) {
		return exitErr.ExitCode(), elapsed
	}
	return 0, elapsed
}

// busyWorker starts a worker with an authenticated data connection and, on both channels, a
// handler that ignores cancellation (sleepBusy, 30 s) and one that honours it (sleep, 30 s).
func busyWorker(t *testing.T, opts workerOptions) (*workerProcess, *dataConn) {
	t.Helper()
	opts.dataPath = filepath.Join(shortTempDir(t), "w.sock")
	opts.drainStderr = true
	opts.env = map[string]string{"GORACE": "atexit_sleep_ms=0"} // measure the worker, not the race detector
	w := startWorker(t, opts)
	w.ready()
	d := w.connect()
	w.sendControl(map[string]any{"jsonrpc": "2.0", "id": 100, "method": "sleepBusy", "params": map[string]any{"seconds": 30}})
	w.sendControl(map[string]any{"jsonrpc": "2.0", "id": 101, "method": "sleep", "params": map[string]any{"seconds": 30, "tag": "control"}})
	d.send(map[string]any{"jsonrpc": "2.0", "id": 200, "method": "sleepBusy", "params": map[string]any{"seconds": 30}})
	d.send(map[string]any{"jsonrpc": "2.0", "id": 201, "method": "sleep", "params": map[string]any{"seconds": 30, "tag": "data"}})
	// Answered after the four were dispatched: they are running.
	if r := d.call(202, "echo", []any{}); r["id"] != int64(202) {
		t.Fatalf("echo: %v", r)
	}
	if r := w.call(102, "echo", []any{}); r["id"] != int64(102) {
		t.Fatalf("echo: %v", r)
	}
	return w, d
}

func checkSocketRemoved(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left behind: %v", err)
	}
}

// The worker exits within the budget of stdin EOF, SIGTERM and SIGINT, with a data connection open
// and handlers running that ignore cancellation.
func TestWorkerExitsPromptly(t *testing.T) {
	t.Parallel()
	events := map[string]func(w *workerProcess){
		"stdin EOF": func(w *workerProcess) { w.stdin.Close() },
		"SIGTERM":   func(w *workerProcess) { w.signal(syscall.SIGTERM) },
		"SIGINT":    func(w *workerProcess) { w.signal(syscall.SIGINT) },
	}
	for name, event := range events {
		name, event := name, event
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w, _ := busyWorker(t, workerOptions{})
			start := time.Now()
			event(w)
			code, elapsed := w.exitedAfter(start)
			t.Logf("%s: exited after %v", name, elapsed)
			if code != 0 || elapsed > exitBudget {
				t.Fatalf("exit code %d after %v; want 0 within %v", code, elapsed, exitBudget)
			}
			checkSocketRemoved(t, w.dataPath)
		})
	}
}

// The shutdown order (PROTOCOL.md 8.1): every request in flight on either channel is answered
// (the cancelled ones -32002, after their cancelObserved notification) before the $/shutdown
// result; then the data connection closes and the worker exits within the budget.
func TestWorkerShutdownOrderWithDeafHandlers(t *testing.T) {
	t.Parallel()
	w, d := busyWorker(t, workerOptions{})
	w.sendControl(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "$/shutdown", "params": map[string]any{"timeout": 0}})
	w.sendControl(map[string]any{"jsonrpc": "2.0", "id": 2, "method": "echo", "params": []any{}})
	seen := map[any]bool{}
	var resultAt time.Time
	for resultAt.IsZero() {
		r := w.readControl()
		switch {
		case r["method"] == "cancelObserved":
			seen["observed"] = true
		case r["id"] == int64(2):
			if errorCode(t, r) != CodeShuttingDown {
				t.Fatalf("request after $/shutdown: %v", r)
			}
			seen[r["id"]] = true
		case r["id"] == int64(1):
			if r["error"] != nil || r["result"] != nil {
				t.Fatalf("$/shutdown answered %v", r)
			}
			resultAt = time.Now()
		case r["id"] == int64(100) || r["id"] == int64(101):
			if errorCode(t, r) != CodeRequestCancelled {
				t.Fatalf("in-flight control request answered %v", r)
			}
			seen[r["id"]] = true
		default:
			t.Fatalf("unexpected %v", r)
		}
	}
	if !seen[int64(2)] || !seen[int64(100)] || !seen[int64(101)] || !seen["observed"] {
		t.Fatalf("before the $/shutdown result, control had only %v", seen)
	}
	// The data requests were answered before the result too: their frames were written first.
	got := map[any]bool{}
	for msg := d.read(); msg != nil; msg = d.read() {
		if errorCode(t, msg) != CodeRequestCancelled {
			t.Fatalf("in-flight data request answered %v", msg)
		}
		got[msg["id"]] = true
	}
	if !got[int64(200)] || !got[int64(201)] {
		t.Fatalf("data requests answered: %v", got)
	}
	code, elapsed := w.exitedAfter(resultAt)
	t.Logf("exited %v after the $/shutdown result", elapsed)
	if code != 0 || elapsed > exitBudget {
		t.Fatalf("exit code %d after %v; want 0 within %v", code, elapsed, exitBudget)
	}
	checkSocketRemoved(t, w.dataPath)
}

// processGone reports whether pid has exited (a zombie waiting to be reaped has).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && len(stat) > i+2 && (stat[i+2] == 'Z' || stat[i+2] == 'X')
}

// When the parent is gone (stdin EOF), the worker takes the processes of its process group down
// with it, busy handlers or not: all gone within 2 s (PROTOCOL.md 8.3).
func TestWorkerParentDeathEndsItsProcessGroup(t *testing.T) {
	t.Parallel()
	w, d := busyWorker(t, workerOptions{newSession: true})
	r := d.call(3, "spawnChild", map[string]any{"seconds": 60})
	child := int(r["result"].(map[string]any)["pid"].(int64))
	if processGone(child) {
		t.Fatal("the child is not running")
	}
	start := time.Now()
	w.stdin.Close()
	if code, _ := w.exitedAfter(start); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for !processGone(child) {
		if time.Since(start) > 2*time.Second {
			t.Fatalf("the worker's child %d still runs 2 s after the parent left", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("worker and child gone after %v", time.Since(start))
	checkSocketRemoved(t, w.dataPath)
}

// A worker whose stderr is a broken pipe (the parent died first) is not killed by SIGPIPE when it
// writes there: it cleans up and exits 0 (PROTOCOL.md 8.3).
func TestWorkerSurvivesABrokenStderr(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path})
	w.ready()
	w.stderrR.Close() // nobody reads stderr any more
	w.connect()       // its hooks write to stderr
	for i := 1; i <= 3; i++ {
		if r := w.call(i, "print", map[string]any{"text": "into a broken pipe"}); r["id"] != int64(i) || r["error"] != nil {
			t.Fatalf("print: %v", r)
		}
	}
	start := time.Now()
	w.stdin.Close()
	if code, _ := w.exitedAfter(start); code != 0 {
		t.Fatalf("exit code %d (%v), want 0", code, w.exitErr)
	}
	checkSocketRemoved(t, path)
}

// A broken stdout means the control channel, and so the parent, is gone: the worker cleans up and
// exits 0 as on stdin EOF, though its stdin is still open (PROTOCOL.md 8.4).
func TestWorkerExitsOnABrokenStdout(t *testing.T) {
	t.Parallel()
	w, _ := busyWorker(t, workerOptions{})
	w.stdoutR.Close()
	for range w.lines { // the reader stops
	}
	start := time.Now()
	w.sendControl(map[string]any{"jsonrpc": "2.0", "id": 3, "method": "echo", "params": []any{}}) // answered into the broken pipe
	code, elapsed := w.exitedAfter(start)
	t.Logf("exited %v after the write", elapsed)
	if code != 0 || elapsed > exitBudget {
		t.Fatalf("exit code %d after %v; want 0 within %v", code, elapsed, exitBudget)
	}
	checkSocketRemoved(t, w.dataPath)
}

// A worker whose parent dies while someone else keeps its stdin open notices that its parent pid
// changed and stops, socket file removed, well within 2 s (PROTOCOL.md 8.3). The parent here is a
// shell that starts the worker in the background, with the test's pipes, and exits when the test
// closes the pipe it reads (its descriptor 3).
func TestWorkerNoticesANewParentPid(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	// (A background job's stdin is /dev/null unless redirected from another descriptor.)
	cmd := exec.Command("/bin/sh", "-c", `exec 4<&0; "$0" -test.run='^$' <&4 3<&- 4<&- & exec 4<&-; read x <&3; exit 0`, os.Args[0])
	releaseR, releaseW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer releaseW.Close()
	cmd.ExtraFiles = []*os.File{releaseR}
	cmd.Env = append(os.Environ(), "GO_WANT_HELPER_PROCESS=1", "GORACE=atexit_sleep_ms=0", "ASPECT_IPC_PROTOCOL=1", "ASPECT_IPC_WORKER_ID=w",
		"ASPECT_IPC_NAMESPACE=tests", "ASPECT_IPC_DATA_PATH="+path, "ASPECT_IPC_TOKEN="+testToken)
	stdinR, stdinW, err := os.Pipe() // the write end stays open all along (not cmd.StdinPipe: Wait closes that)
	if err != nil {
		t.Fatal(err)
	}
	defer stdinW.Close()
	cmd.Stdin = stdinR
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdoutR.Close()
	cmd.Stdout, cmd.Stderr = stdoutW, stdoutW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdoutW.Close()
	stdinR.Close()
	releaseR.Close()
	// The worker's $/ready gives its pid; the hook lines (stderr) share the pipe.
	var pid int
	lines := bufio.NewScanner(stdoutR)
	for pid == 0 && lines.Scan() {
		if v, err := (JSONCodec{}).Decode(lines.Bytes()); err == nil {
			if m, _ := v.(map[string]any); m["method"] == "$/ready" {
				pid = int(m["params"].(map[string]any)["pid"].(int64))
			}
		}
	}
	if pid == 0 {
		t.Fatal("no $/ready")
	}
	go func() { // keep reading, so that the worker never blocks on the pipe
		for lines.Scan() {
		}
	}()
	releaseW.Close()
	if err := cmd.Wait(); err != nil { // the shell, the worker's parent, exits
		t.Fatal(err)
	}
	start := time.Now()
	for !processGone(pid) {
		if time.Since(start) > 2*time.Second {
			t.Fatalf("worker %d still runs 2 s after its parent exited", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("worker gone %v after its parent", time.Since(start))
	checkSocketRemoved(t, path)
}
