package aspectipc

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// errorData returns the data of an error response.
func errorData(t *testing.T, msg map[string]any) map[string]any {
	t.Helper()
	e, ok := msg["error"].(map[string]any)
	if !ok {
		t.Fatalf("not an error response: %v", msg)
	}
	data, _ := e["data"].(map[string]any)
	return data
}

// A worker answers a panic with its traceback on both channels, logs each failure with it on
// stderr (slog.Default, as Config.Logger is nil), and goes on serving.
func TestWorkerSendsAndLogsTracebacks(t *testing.T) {
	t.Parallel()
	w := startWorker(t, workerOptions{dataPath: filepath.Join(shortTempDir(t), "w.sock"), drainStderr: true})
	w.ready()
	d := w.connect()
	for _, r := range []map[string]any{
		w.call(1, "panic", map[string]any{"message": "control boom"}),
		d.call(1, "panic", map[string]any{"message": "data boom"}),
	} {
		data := errorData(t, r)
		tb, _ := data["traceback"].(string)
		if errorCode(t, r) != CodeHandlerError || data["type"] != "string" ||
			!strings.HasPrefix(tb, "panic: ") || !strings.Contains(tb, "workers-go.helperPanic(") {
			t.Fatalf("panic response: %v", r)
		}
	}
	r := w.call(2, "fail", nil)
	if errorCode(t, r) != CodeHandlerError || !sameValue(errorData(t, r), map[string]any{"type": "errors.errorString"}) {
		t.Fatalf("fail response: %v", r)
	}
	r = w.call(3, "typed", nil)
	if errorCode(t, r) != 42 || !sameValue(errorData(t, r), map[string]any{"k": "v"}) {
		t.Fatalf("typed response: %v", r)
	}
	w.sendControl(map[string]any{"jsonrpc": "2.0", "method": "panic", "params": map[string]any{"message": "note boom"}})
	w.waitStderr(`ERROR aspect-ipc: request handler "panic" on the control channel failed (string): control boom` + "\npanic: control boom\n\ngoroutine ")
	w.waitStderr(`ERROR aspect-ipc: request handler "panic" on the data channel failed (string): data boom` + "\npanic: data boom\n\n")
	w.waitStderr(`ERROR aspect-ipc: request handler "fail" on the control channel failed (errors.errorString): plain failure` + "\n")
	w.waitStderr(`ERROR aspect-ipc: notification handler "panic" on the control channel failed (string): note boom` + "\npanic: note boom\n\n")
	if !strings.Contains(w.stderrText(), "workers-go.helperPanic(") {
		t.Fatalf("the logged stack does not show the handler:\n%s", w.stderrText())
	}
	if r := w.call(4, "echo", []any{"alive"}); !sameValue(r["result"], []any{"alive"}) {
		t.Fatalf("after the panics: %v", r)
	}
	if strings.Contains(w.stderrText(), "typed failure") {
		t.Fatalf("a typed error was logged:\n%s", w.stderrText())
	}
}

// ASPECT_IPC_TRACEBACKS=0 keeps the traceback off the wire, not out of the worker's own log;
// Config.LogHandlerErrors=false turns the log off.
func TestWorkerTracebackSwitches(t *testing.T) {
	t.Parallel()
	t.Run("not sent", func(t *testing.T) {
		t.Parallel()
		w := startWorker(t, workerOptions{drainStderr: true, env: map[string]string{"ASPECT_IPC_TRACEBACKS": "0"}})
		w.ready()
		r := w.call(1, "panic", map[string]any{"message": "boom"})
		if errorCode(t, r) != CodeHandlerError || !sameValue(errorData(t, r), map[string]any{"type": "string"}) {
			t.Fatalf("panic response: %v", r)
		}
		w.waitStderr("failed (string): boom\npanic: boom\n\ngoroutine ")
	})
	t.Run("not logged", func(t *testing.T) {
		t.Parallel()
		w := startWorker(t, workerOptions{drainStderr: true, env: map[string]string{"HELPER_LOG_HANDLER_ERRORS": "0"}})
		w.ready()
		if data := errorData(t, w.call(1, "panic", map[string]any{"message": "boom"})); data["traceback"] == nil {
			t.Fatalf("no traceback sent: %v", data)
		}
		w.call(2, "fail", nil)
		w.sendControl(map[string]any{"jsonrpc": "2.0", "method": "panic", "params": map[string]any{"message": "note"}})
		w.call(3, "print", map[string]any{"text": "marker"}) // the program's stdout goes to stderr
		w.waitStderr("marker")
		if text := w.stderrText(); strings.Contains(text, "failed") || strings.Contains(text, "panic") {
			t.Fatalf("failures were logged:\n%s", text)
		}
	})
	for _, raw := range []string{"yes", " 0"} {
		raw := raw
		t.Run("invalid "+raw, func(t *testing.T) {
			t.Parallel()
			w := startWorker(t, workerOptions{drainStderr: true, env: map[string]string{"ASPECT_IPC_TRACEBACKS": raw}})
			want := `invalid ASPECT_IPC_TRACEBACKS "` + raw + `": expected "0" (off) or "1" (on), or unset`
			if code := w.waitExit(); code != 2 || !strings.Contains(w.stderrText(), want) ||
				strings.Count(strings.TrimSpace(w.stderrText()), "\n") != 0 {
				t.Fatalf("exit code %d, stderr:\n%s", code, w.stderrText())
			}
		})
	}
}

// A worker answers failures whose text is not Unicode on both channels, with the request's id
// (PROTOCOL.md 4.9, 4.10): the text sanitized, or -32603 for a typed error's Data.
func TestWorkerFailureNotUnicode(t *testing.T) {
	t.Parallel()
	w := startWorker(t, workerOptions{dataPath: filepath.Join(shortTempDir(t), "w.sock"), drainStderr: true})
	w.ready()
	d := w.connect()
	for name, call := range map[string]func(int, string, any) map[string]any{"control": w.call, "data": d.call} {
		answer := func(id int, kind string) (map[string]any, map[string]any) {
			t.Helper()
			r := call(id, "failBytes", map[string]any{"kind": kind})
			e, _ := r["error"].(map[string]any)
			if !sameValue(r["id"], id) || e == nil {
				t.Fatalf("%s %s: %v", name, kind, r)
			}
			data, _ := e["data"].(map[string]any)
			return e, data
		}
		if e, data := answer(10, "plain"); !sameValue(e["code"], CodeHandlerError) || e["message"] != "bad \uFFFD" ||
			!sameValue(data, map[string]any{"type": "errors.errorString"}) {
			t.Errorf("%s plain: %v", name, e)
		}
		if e, data := answer(11, "panic"); !sameValue(e["code"], CodeHandlerError) || e["message"] != "bad \uFFFD" ||
			data["type"] != "string" || !strings.HasPrefix(fmt.Sprint(data["traceback"]), "panic: bad \uFFFD\n\ngoroutine ") {
			t.Errorf("%s panic: %v", name, e)
		}
		if e, data := answer(12, "typed"); !sameValue(e["code"], 42) || e["message"] != "bad \uFFFD" ||
			!sameValue(data, map[string]any{"k": "v"}) {
			t.Errorf("%s typed: %v", name, e)
		}
		if e, _ := answer(13, "data"); !sameValue(e["code"], CodeInternalError) || e["data"] != nil ||
			!strings.HasPrefix(fmt.Sprint(e["message"]), "Internal error: the error response cannot be encoded: ") {
			t.Errorf("%s typed data: %v", name, e)
		}
	}
}
