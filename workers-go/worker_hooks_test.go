package aspectipc

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// hookLines returns the hook lines of a worker's stderr, in order.
func hookLines(stderr string) []string {
	var out []string
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(line, "hook: ") {
			out = append(out, strings.TrimPrefix(line, "hook: "))
		}
	}
	return out
}

const readyHooks = "control ready,data setup,data listening,data connected,data ready,all ready"

// Every hook runs once, in the order of the table (control ready ... ready, shutting down with the
// reason, stopped), and OnShuttingDown names the cause of each way a worker stops.
func TestHookOrderAndShutdownReasons(t *testing.T) {
	t.Parallel()
	causes := map[ShutdownReason]func(w *workerProcess){
		ReasonShutdownRequest: func(w *workerProcess) {
			w.sendControl(map[string]any{"jsonrpc": "2.0", "id": 9, "method": "$/shutdown"})
		},
		ReasonShutdownCall: func(w *workerProcess) { w.sendControl(map[string]any{"jsonrpc": "2.0", "id": 9, "method": "stop"}) },
		ReasonStdinEOF:     func(w *workerProcess) { w.stdin.Close() },
		ReasonStdoutClosed: func(w *workerProcess) {
			w.stdoutR.Close()
			for range w.lines { // the reader stops
			}
			w.sendControl(map[string]any{"jsonrpc": "2.0", "id": 9, "method": "echo", "params": []any{}})
		},
		ReasonSignal: func(w *workerProcess) { w.signal(syscall.SIGTERM) },
	}
	for reason, cause := range causes {
		reason, cause := reason, cause
		t.Run(string(reason), func(t *testing.T) {
			t.Parallel()
			w := startWorker(t, workerOptions{dataPath: filepath.Join(shortTempDir(t), "w.sock"), drainStderr: true})
			w.ready()
			w.connect()
			w.waitStderr("hook: all ready")
			cause(w)
			if code := w.waitExit(); code != 0 {
				t.Fatalf("exit code %d; stderr:\n%s", code, w.stderrText())
			}
			<-w.drained
			got := strings.Join(hookLines(w.stderrText()), ",")
			if want := readyHooks + ",shutting down " + string(reason) + ",stopped"; got != want {
				t.Fatalf("hooks ran as\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// A worker whose parent exits (its parent pid changes) stops with the reason parent_exited.
func TestHookReasonParentExited(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	// The parent is a shell that starts the worker in the background, with the test's pipes, and
	// exits when the test closes the pipe it reads (its descriptor 3); stdin stays open.
	cmd := exec.Command("/bin/sh", "-c", `exec 4<&0; "$0" -test.run='^$' <&4 3<&- 4<&- & exec 4<&-; read x <&3; exit 0`, os.Args[0])
	releaseR, releaseW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer releaseW.Close()
	cmd.ExtraFiles = []*os.File{releaseR}
	cmd.Env = append(os.Environ(), "GO_WANT_HELPER_PROCESS=1", "GORACE=atexit_sleep_ms=0", "ASPECT_IPC_PROTOCOL=1", "ASPECT_IPC_WORKER_ID=w",
		"ASPECT_IPC_NAMESPACE=tests", "ASPECT_IPC_DATA_PATH="+path, "ASPECT_IPC_TOKEN="+testToken)
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinW.Close()
	cmd.Stdin = stdinR
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	cmd.Stdout, cmd.Stderr = outW, outW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	stdinR.Close()
	releaseR.Close()
	var mu sync.Mutex
	var lines []string
	readyc, ended := make(chan struct{}), make(chan struct{})
	go func() { // stdout and stderr share the pipe; it ends when the worker has exited
		defer close(ended)
		scanner := bufio.NewScanner(outR)
		for scanner.Scan() {
			mu.Lock()
			lines = append(lines, scanner.Text())
			mu.Unlock()
			if strings.Contains(scanner.Text(), `"$/ready"`) {
				close(readyc)
			}
		}
	}()
	<-readyc
	releaseW.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker still runs 10 s after its parent exited")
	}
	mu.Lock()
	defer mu.Unlock()
	got := strings.Join(hookLines(strings.Join(lines, "\n")), ",")
	if want := "control ready,data setup,data listening,shutting down parent_exited,stopped"; got != want {
		t.Fatalf("hooks ran as\n%s\nwant\n%s", got, want)
	}
}

// A hook that panics is logged (Config.Logger) and the worker goes on serving.
func TestPanickingHookIsLoggedAndIgnored(t *testing.T) {
	t.Parallel()
	w := startWorker(t, workerOptions{drainStderr: true, env: map[string]string{"HELPER_PANIC_HOOK": "1"}})
	w.ready()
	w.waitStderr("hook OnReady panicked: hook failure")
	if r := w.call(1, "echo", []any{"alive"}); !sameValue(r["result"], []any{"alive"}) {
		t.Fatalf("after the panicking hook: %v", r)
	}
}

// The reasons are the same strings in every SDK.
func TestShutdownReasonStrings(t *testing.T) {
	want := map[ShutdownReason]string{
		ReasonShutdownRequest: "shutdown_request", ReasonShutdownCall: "shutdown_call", ReasonStdinEOF: "stdin_eof",
		ReasonStdoutClosed: "stdout_closed", ReasonParentExited: "parent_exited", ReasonSignal: "signal",
	}
	for reason, s := range want {
		if string(reason) != s {
			t.Errorf("%q, want %q", reason, s)
		}
	}
}
