package aspectipc

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Process tests of the worker's start-up refusals and of the ways it stops.

func TestWorkerStdinEOF(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true})
	w.ready()
	d := w.connect()
	d.send(map[string]any{"jsonrpc": "2.0", "id": 2, "method": "sleep", "params": map[string]any{"seconds": 60, "tag": "t"}})
	w.stdin.Close()
	if code := w.waitExit(); code != 0 {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", code, w.stderrText())
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left behind: %v", err)
	}
}

func TestWorkerSignalCleansUp(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		path := filepath.Join(shortTempDir(t), "w.sock")
		w := startWorker(t, workerOptions{dataPath: path, drainStderr: true})
		w.ready()
		w.connect()
		w.signal(sig)
		if code := w.waitExit(); code != 0 {
			t.Fatalf("%v: exit code %d; stderr:\n%s", sig, code, w.stderrText())
		}
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%v: socket file left behind: %v", sig, err)
		}
	}
}

func TestWorkerIgnoredSIGTERMIsNotWatched(t *testing.T) {
	t.Parallel()
	w := startWorker(t, workerOptions{drainStderr: true, env: map[string]string{"HELPER_IGNORE_SIGTERM": "1"}})
	w.ready()
	w.signal(syscall.SIGTERM)
	// Still alive and answering: the SDK did not un-ignore SIGTERM.
	if r := w.call(1, "echo", []any{"alive"}); !sameValue(r["result"], []any{"alive"}) {
		t.Fatalf("after SIGTERM: %v", r)
	}
}

func TestWorkerShutdown(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true})
	w.ready()
	d := w.connect()
	d.send(map[string]any{"jsonrpc": "2.0", "id": 2, "method": "sleep", "params": map[string]any{"seconds": 0.3, "tag": "in-flight"}})
	d.send(map[string]any{"jsonrpc": "2.0", "id": 3, "method": "echo", "params": []any{}})
	if r := d.read(); r["id"] != int64(3) {
		t.Fatalf("echo: %v", r) // the sleep is running when the shutdown arrives
	}
	w.sendControl(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "$/shutdown", "params": map[string]any{"timeout": 5}})
	w.waitStderr("hook: shutting down")
	if r := d.call(4, "echo", []any{}); errorCode(t, r) != CodeShuttingDown {
		t.Fatalf("request during shutdown: %v", r)
	}
	if r := d.read(); r["id"] != int64(2) || r["result"] != "done" {
		t.Fatalf("in-flight request during shutdown: %v", r)
	}
	if r := w.readControl(); r["id"] != int64(1) || r["result"] != nil || r["error"] != nil {
		t.Fatalf("$/shutdown answered %v", r)
	}
	d.expectEOF()
	if code := w.waitExit(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left behind: %v", err)
	}
}

func TestWorkerShutdownCancelsAfterTimeout(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true})
	w.ready()
	d := w.connect()
	d.send(map[string]any{"jsonrpc": "2.0", "id": 2, "method": "sleep", "params": map[string]any{"seconds": 60, "tag": "long"}})
	d.send(map[string]any{"jsonrpc": "2.0", "id": 3, "method": "echo", "params": []any{}})
	d.read()
	w.sendControl(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "$/shutdown", "params": map[string]any{"timeout": 0}})
	note := w.readControl()
	if note["method"] != "cancelObserved" || !sameValue(note["params"], map[string]any{"tag": "long", "cause": ErrShuttingDown.Error()}) {
		t.Fatalf("expected cancelObserved before the $/shutdown response, got %v", note)
	}
	if r := d.read(); r["id"] != int64(2) || errorCode(t, r) != CodeRequestCancelled {
		t.Fatalf("cancelled request: %v", r)
	}
	if r := w.readControl(); r["id"] != int64(1) || r["error"] != nil {
		t.Fatalf("$/shutdown answered %v", r)
	}
	if code := w.waitExit(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func TestWorkerShutdownFromHandler(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true})
	w.ready()
	w.connect()
	if r := w.call(1, "stop", nil); r["result"] != "stopping" {
		t.Fatalf("stop: %v", r)
	}
	if code := w.waitExit(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left behind: %v", err)
	}
}

func TestWorkerStartupRefusals(t *testing.T) {
	t.Parallel()
	dir := shortTempDir(t)

	t.Run("missing token", func(t *testing.T) {
		w := startWorker(t, workerOptions{drainStderr: true, env: map[string]string{"ASPECT_IPC_DATA_PATH": filepath.Join(dir, "a.sock")}})
		if code := w.waitExit(); code != 2 || !strings.Contains(w.stderrText(), "ASPECT_IPC_TOKEN is missing or empty") {
			t.Fatalf("exit code %d, stderr:\n%s", code, w.stderrText())
		}
	})
	t.Run("invalid max frame size", func(t *testing.T) {
		w := startWorker(t, workerOptions{drainStderr: true, env: map[string]string{"ASPECT_IPC_MAX_FRAME_SIZE": "lots"}})
		if code := w.waitExit(); code != 2 || !strings.Contains(w.stderrText(), "invalid ASPECT_IPC_MAX_FRAME_SIZE") {
			t.Fatalf("exit code %d, stderr:\n%s", code, w.stderrText())
		}
	})
	t.Run("regular file", func(t *testing.T) {
		path := filepath.Join(dir, "file.sock")
		os.WriteFile(path, []byte("mine"), 0o600)
		w := startWorker(t, workerOptions{dataPath: path, drainStderr: true})
		if code := w.waitExit(); code != 2 || !strings.Contains(w.stderrText(), "path exists and is not a socket: "+path) {
			t.Fatalf("exit code %d, stderr:\n%s", code, w.stderrText())
		}
		if b, _ := os.ReadFile(path); !bytes.Equal(b, []byte("mine")) {
			t.Fatal("the regular file was touched")
		}
	})
	t.Run("live socket", func(t *testing.T) {
		path := filepath.Join(dir, "live.sock")
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		w := startWorker(t, workerOptions{dataPath: path, drainStderr: true})
		if code := w.waitExit(); code != 2 || !strings.Contains(w.stderrText(), "address in use by a live worker: "+path) {
			t.Fatalf("exit code %d, stderr:\n%s", code, w.stderrText())
		}
		if _, err := os.Lstat(path); err != nil {
			t.Fatalf("the live socket was removed: %v", err)
		}
	})
	t.Run("stale socket", func(t *testing.T) {
		path := filepath.Join(dir, "stale.sock")
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		l.SetUnlinkOnClose(false)
		l.Close() // the file stays, nobody listens: stale
		w := startWorker(t, workerOptions{dataPath: path, drainStderr: true})
		if ready := w.ready(); ready["dataPath"] != path {
			t.Fatalf("$/ready: %v", ready)
		}
		w.connect()
	})
}

// A worker written as the README says (Serve, then os.Exit(ExitCode(err)), nothing printed by the
// program) that refuses to start exits with code 2 and one line on stderr naming the cause, written
// by the SDK (PROTOCOL.md 5): the parent's WorkerExitedDuringStartup quotes it.
func TestWorkerStartupRefusalLine(t *testing.T) {
	t.Parallel()
	dir := shortTempDir(t)
	file := filepath.Join(dir, "file.sock")
	if err := os.WriteFile(file, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		dataPath string
		env      map[string]string
		want     string
	}{
		{"tracebacks", "", map[string]string{"ASPECT_IPC_TRACEBACKS": "yes"},
			`aspect-ipc worker: invalid ASPECT_IPC_TRACEBACKS "yes": expected "0" (off) or "1" (on), or unset`},
		{"max frame size", "", map[string]string{"ASPECT_IPC_MAX_FRAME_SIZE": "12"},
			`aspect-ipc worker: invalid ASPECT_IPC_MAX_FRAME_SIZE "12": expected 1 to 10 ASCII digits (no sign, no spaces) with a value from 1024 to 4294967295`},
		{"max line length", "", map[string]string{"ASPECT_IPC_MAX_LINE_LENGTH": " 4096"},
			`aspect-ipc worker: invalid ASPECT_IPC_MAX_LINE_LENGTH " 4096": expected 1 to 10 ASCII digits (no sign, no spaces) with a value from 1024 to 4294967295`},
		{"missing token", "", map[string]string{"ASPECT_IPC_DATA_PATH": filepath.Join(dir, "a.sock")},
			"aspect-ipc worker: ASPECT_IPC_DATA_PATH is set but ASPECT_IPC_TOKEN is missing or empty: refusing to open a data channel anyone could connect to"},
		{"data path not a socket", file, nil,
			"aspect-ipc worker: path exists and is not a socket: " + file},
		// PROTOCOL.md 5.1, Encoding: Latin-1 bytes, as a parent under such a locale would write them.
		{"worker id not UTF-8", "", map[string]string{"ASPECT_IPC_WORKER_ID": "w\xe9-1"},
			`aspect-ipc worker: invalid ASPECT_IPC_WORKER_ID "w\xe9-1": ` + notUTF8Rule},
		{"namespace not UTF-8", "", map[string]string{"ASPECT_IPC_NAMESPACE": "caf\xe9"},
			`aspect-ipc worker: invalid ASPECT_IPC_NAMESPACE "caf\xe9": ` + notUTF8Rule},
		{"data path not UTF-8", filepath.Join(dir, "\xe9.sock"), nil,
			`aspect-ipc worker: invalid ASPECT_IPC_DATA_PATH "` + dir + `/\xe9.sock": ` + notUTF8Rule},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := startWorker(t, workerOptions{documented: true, dataPath: c.dataPath, drainStderr: true, env: c.env})
			code := w.waitExit()
			if text := w.stderrText(); code != 2 || text != c.want+"\n" {
				t.Fatalf("exit code %d (want 2), stderr %q; want exactly the line %q", code, text, c.want)
			}
		})
	}
}

// PROTOCOL.md 7.4: each data connection refused with an error reply is one line on stderr,
// "data connection refused: <the error's message>", never the token, even with no Logger (the
// README's worker), so that the parent, which logs its workers' stderr, shows a stranger's attempts.
func TestWorkerDataRefusalLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{documented: true, dataPath: path, drainStderr: true})
	w.ready()
	wrong := strings.Repeat("f", 64)
	bad := dialData(t, path)
	if r := bad.hello(wrong); errorCode(t, r) != CodeUnauthorized {
		t.Fatalf("wrong token: %v", r)
	}
	bad.expectEOF()
	w.waitStderr("data connection refused: ")
	w.connect() // the refusal is written before the reply: nothing more is on its way
	var refused []string
	for _, line := range strings.Split(w.stderrText(), "\n") {
		if strings.Contains(line, "data connection refused: ") {
			refused = append(refused, line)
		}
	}
	text := w.stderrText()
	if len(refused) != 1 || strings.Contains(text, wrong) || strings.Contains(text, testToken) {
		t.Fatalf("want one refusal line without the token; stderr:\n%s", text)
	}
}

const notUTF8Rule = "not valid UTF-8 (a parent passes the worker id, the namespace and the data path as UTF-8, whatever its locale)"

// Names that are UTF-8 but not ASCII are taken as they are: $/ready gives the data path back, and
// $/hello is answered (it echoes the id and the namespace).
func TestWorkerTakesUTF8NamesBeyondASCII(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "é.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true,
		env: map[string]string{"ASPECT_IPC_WORKER_ID": "wörker-1", "ASPECT_IPC_NAMESPACE": "café"}})
	if ready := w.ready(); ready["dataPath"] != path {
		t.Fatalf("$/ready: %v", ready)
	}
	w.connect()
}

// The line stays one line whatever the message holds.
func TestReportStartupErrorOneLine(t *testing.T) {
	var out strings.Builder
	reportStartupError(&out, &StartupError{Message: "first\nsecond\r\nthird"})
	if got, want := out.String(), "aspect-ipc worker: first second third\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// readAvailable returns what a pipe holds now, without waiting for more.
func readAvailable(t *testing.T, f *os.File) []byte {
	t.Helper()
	raw, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	buf := make([]byte, 4096)
	for {
		var n int
		var readErr error
		err := raw.Read(func(fd uintptr) bool {
			n, readErr = syscall.Read(int(fd), buf)
			return true // never wait: only what is already there counts
		})
		if err != nil || readErr != nil || n <= 0 {
			return out
		}
		out = append(out, buf[:n]...)
	}
}
