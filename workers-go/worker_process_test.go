package aspectipc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests run the helper worker as a real child process (see helper_process_test.go).

func TestWorkerHandshake(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path})
	ready := w.ready()
	want := map[string]any{"protocol": int64(1), "sdk": "aspect-ipc-go", "sdkVersion": "0.1.0",
		"language": "go", "pid": int64(w.cmd.Process.Pid), "dataPath": path}
	if !sameValue(ready, want) {
		t.Fatalf("$/ready params %v, want %v", ready, want)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket file %v (%v), want a socket with mode 0600", fi.Mode(), err)
	}
	d := dialData(t, path)
	resp := d.hello(testToken)
	wantResult := map[string]any{"protocol": int64(1), "workerId": "worker-1", "pid": int64(w.cmd.Process.Pid)}
	if resp["id"] != int64(1) || !sameValue(resp["result"], wantResult) {
		t.Fatalf("$/hello answered %v, want result %v", resp, wantResult)
	}
	// The hooks ran, and wrote to stderr, before the $/hello response was sent: their lines are
	// already in the stderr pipe, so a read that does not wait finds them.
	got := readAvailable(t, w.stderrR)
	wantLines := "hook: control ready\nhook: data setup\nhook: data listening\nhook: data connected\nhook: data ready\nhook: all ready\n"
	if string(got) != wantLines {
		t.Fatalf("stderr before the $/hello response:\n%s\nwant:\n%s", got, wantLines)
	}
	go w.drainStderr()
	// The token was removed from the environment: neither the worker nor its children see it.
	if r := w.call(1, "getEnv", map[string]any{"name": "ASPECT_IPC_TOKEN"}); r["result"] != nil || r["error"] != nil {
		t.Fatalf("getEnv ASPECT_IPC_TOKEN: %v", r)
	}
	if r := w.call(2, "childEnv", nil); strings.Contains(r["result"].(string), "ASPECT_IPC_TOKEN") {
		t.Fatalf("a child process inherited the token: %v", r)
	}
	if r := w.call(3, "getEnv", map[string]any{"name": "ASPECT_IPC_WORKER_ID"}); r["result"] != "worker-1" {
		t.Fatalf("getEnv ASPECT_IPC_WORKER_ID: %v", r)
	}
}

func TestWorkerControlOnly(t *testing.T) {
	t.Parallel()
	w := startWorker(t, workerOptions{drainStderr: true})
	if ready := w.ready(); ready["dataPath"] != nil {
		t.Fatalf("dataPath %v, want null", ready["dataPath"])
	}
	w.waitStderr("hook: all ready")
	if strings.Contains(w.stderrText(), "data") {
		t.Fatalf("data hooks ran without a data channel:\n%s", w.stderrText())
	}
	if r := w.call(1, "echo", []any{"x"}); !sameValue(r["result"], []any{"x"}) {
		t.Fatalf("echo: %v", r)
	}
}

func TestWorkerRequestsOnBothChannels(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true})
	w.ready()
	d := w.connect()

	params := map[string]any{"s": "héllo", "n": int64(-5), "f": 1.5, "l": []any{true, nil}}
	if r := w.call(7, "echo", params); r["id"] != int64(7) || !sameValue(r["result"], params) {
		t.Fatalf("control echo: %v", r)
	}
	binParams := []any{[]byte{0, 0xff, '\n'}, uint64(1<<64 - 1)}
	if r := d.call(8, "echo", binParams); r["id"] != int64(8) || !sameValue(r["result"], binParams) {
		t.Fatalf("data echo: %v", r)
	}
	if r := d.call(9, "nope", nil); errorCode(t, r) != CodeMethodNotFound || r["error"].(map[string]any)["message"] != "Method not found: nope" {
		t.Fatalf("unknown method on data: %v", r)
	}
	if r := w.call(10, "nope", nil); errorCode(t, r) != CodeMethodNotFound {
		t.Fatalf("unknown method on control: %v", r)
	}
	if r := d.call(11, "$/ping", nil); !sameValue(r["result"], map[string]any{}) {
		t.Fatalf("$/ping: %v", r)
	}
	// A parse error is answered and the channels stay usable.
	w.sendLine("hello world")
	if r := w.readControl(); errorCode(t, r) != CodeParseError || r["id"] != nil {
		t.Fatalf("junk line: %v", r)
	}
	d.writeRaw([]byte{0, 0, 0, 7, '{', '"', 'a', '"', ':', '1', '}'})
	if r := d.read(); errorCode(t, r) != CodeParseError || !strings.Contains(r["error"].(map[string]any)["message"].(string), "MessagePackCodec") {
		t.Fatalf("JSON frame on data: %v", r)
	}
	w.sendLine(`[{"jsonrpc":"2.0","id":1,"method":"echo"}]`)
	if r := w.readControl(); errorCode(t, r) != CodeInvalidRequest || r["error"].(map[string]any)["message"] != "Invalid Request: batches are not supported" {
		t.Fatalf("batch: %v", r)
	}
	if r := w.call(12, "echo", "scalar"); errorCode(t, r) != CodeInvalidRequest || r["id"] != int64(12) {
		t.Fatalf("scalar params: %v", r)
	}
	// A string id is echoed as a string.
	d.send(map[string]any{"jsonrpc": "2.0", "id": "a-1", "method": "echo", "params": []any{}})
	if r := d.read(); r["id"] != "a-1" {
		t.Fatalf("string id: %v", r)
	}
	// Invalid params for a struct are -32602.
	if r := d.call(13, "sleep", map[string]any{"seconds": "soon"}); errorCode(t, r) != CodeInvalidParams {
		t.Fatalf("bad params: %v", r)
	}
}

func TestWorkerCallsParentOnBothChannels(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true})
	w.ready()
	d := w.connect()

	// A data request whose handler calls the parent on control.
	d.send(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "callParent",
		"params": map[string]any{"method": "whoami", "via": "control"}})
	req := w.readControl()
	if req["method"] != "whoami" || !sameValue(req["params"], map[string]any{"from": "data"}) {
		t.Fatalf("parent got %v", req)
	}
	w.sendControl(map[string]any{"jsonrpc": "2.0", "id": req["id"], "result": "parent-control"})
	if r := d.read(); r["result"] != "parent-control" {
		t.Fatalf("callParent via control: %v", r)
	}
	// A control request whose handler calls the parent on data; the parent answers an error,
	// which comes back with its code.
	w.call(0, "echo", nil) // keep ids apart: the next response is ours
	w.sendControl(map[string]any{"jsonrpc": "2.0", "id": 2, "method": "callParent",
		"params": map[string]any{"method": "whoami", "via": "data"}})
	req = d.read()
	if req["method"] != "whoami" || !sameValue(req["params"], map[string]any{"from": "control"}) {
		t.Fatalf("parent got %v on data", req)
	}
	d.send(map[string]any{"jsonrpc": "2.0", "id": req["id"], "error": map[string]any{"code": 42, "message": "no", "data": []any{int64(1)}}})
	r := w.readControl()
	if e, _ := r["error"].(map[string]any); r["id"] != int64(2) || e == nil || e["code"] != int64(42) || e["message"] != "no" || !sameValue(e["data"], []any{int64(1)}) {
		t.Fatalf("callParent via data with an error: %v", r)
	}
}

func TestWorkerPrintDoesNotCorruptStdout(t *testing.T) {
	t.Parallel()
	w := startWorker(t, workerOptions{drainStderr: true})
	w.ready()
	for i := 1; i <= 3; i++ {
		r := w.call(i, "print", map[string]any{"text": "stray output {not json}"})
		if r["id"] != int64(i) || r["result"] != nil || r["error"] != nil {
			t.Fatalf("print: %v", r)
		}
	}
	w.waitStderr("stray output {not json}\n")
}

func TestWorkerWrongToken(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true})
	w.ready()
	bad := dialData(t, path)
	r := bad.hello(strings.Repeat("0", 64))
	if errorCode(t, r) != CodeUnauthorized || strings.Contains(r["error"].(map[string]any)["message"].(string), testToken) {
		t.Fatalf("wrong token: %v", r)
	}
	bad.expectEOF()
	// A first frame that is not $/hello is refused the same way.
	other := dialData(t, path)
	other.send(map[string]any{"jsonrpc": "2.0", "id": 5, "method": "echo"})
	if r := other.read(); errorCode(t, r) != CodeUnauthorized || r["id"] != int64(5) {
		t.Fatalf("echo before $/hello: %v", r)
	}
	other.expectEOF()
	// Protocol mismatch with the right token.
	old := dialData(t, path)
	old.send(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "$/hello", "params": map[string]any{"token": testToken, "protocol": 2}})
	r = old.read()
	if errorCode(t, r) != CodeProtocolMismatch || !sameValue(r["error"].(map[string]any)["data"], map[string]any{"supported": []any{int64(1)}}) {
		t.Fatalf("protocol mismatch: %v", r)
	}
	old.expectEOF()
	// The right token still works afterwards.
	d := w.connect()
	if r := d.call(2, "echo", []any{"ok"}); !sameValue(r["result"], []any{"ok"}) {
		t.Fatalf("echo after the failures: %v", r)
	}
}

func TestWorkerHelloTimeout(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true, env: map[string]string{"HELPER_HELLO_TIMEOUT_MS": "100"}})
	w.ready()
	silent := dialData(t, path)
	silent.expectEOF()
	w.connect() // the worker still accepts connections
}

func TestWorkerOversizedFrameFromForeignClient(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true, env: map[string]string{"ASPECT_IPC_MAX_FRAME_SIZE": "1024"}})
	w.ready()
	d := w.connect()
	foreign := dialData(t, path)
	foreign.writeRaw([]byte{0xff, 0xff, 0xff, 0xff})
	if r := foreign.read(); r != nil && errorCode(t, r) != CodeMessageTooLarge {
		t.Fatalf("oversized frame answered %v", r)
	}
	foreign.expectEOF()
	if r := d.call(2, "echo", []any{"still here"}); !sameValue(r["result"], []any{"still here"}) {
		t.Fatalf("authenticated connection after the foreign one: %v", r)
	}
	// A result over the limit is replaced by a -32005 error with the same id.
	if r := d.call(3, "repeat", map[string]any{"n": 2000}); errorCode(t, r) != CodeMessageTooLarge || r["id"] != int64(3) {
		t.Fatalf("oversized result: %v", r)
	}
	// An oversized frame on the authenticated connection closes it; a new one can authenticate.
	d.writeRaw([]byte{0, 0, 4, 1})
	d.expectEOF()
	again := w.connect()
	if r := again.call(4, "echo", []any{1}); !sameValue(r["result"], []any{int64(1)}) {
		t.Fatalf("echo on the new connection: %v", r)
	}
}

func TestWorkerSecondConnection(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true})
	w.ready()
	first := w.connect()
	second := dialData(t, path)
	r := second.hello(testToken)
	if errorCode(t, r) != CodeUnauthorized || r["error"].(map[string]any)["message"] != "data channel already connected" {
		t.Fatalf("second connection: %v", r)
	}
	second.expectEOF()
	if r := first.call(2, "echo", []any{"first"}); !sameValue(r["result"], []any{"first"}) {
		t.Fatalf("first connection after the second: %v", r)
	}
	first.conn.Close()
	// Once the authenticated connection is gone, a new one is accepted.
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := dialData(t, path)
		r := d.hello(testToken)
		if r["result"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new connection accepted: %v", r)
		}
		time.Sleep(10 * time.Millisecond) // the worker has not seen the close yet
	}
}

func TestWorkerCancellationReachesHandler(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true})
	w.ready()
	d := w.connect()
	d.send(map[string]any{"jsonrpc": "2.0", "id": 5, "method": "sleep", "params": map[string]any{"seconds": 60, "tag": "data-5"}})
	d.send(map[string]any{"jsonrpc": "2.0", "method": "$/cancelRequest", "params": map[string]any{"id": 5}})
	note := w.readControl()
	if note["method"] != "cancelObserved" || !sameValue(note["params"], map[string]any{"tag": "data-5", "cause": ErrRequestCancelled.Error()}) {
		t.Fatalf("expected cancelObserved, got %v", note)
	}
	if r := d.read(); r["id"] != int64(5) || errorCode(t, r) != CodeRequestCancelled {
		t.Fatalf("cancelled request answered %v", r)
	}
	// On control too, with a string id.
	w.sendControl(map[string]any{"jsonrpc": "2.0", "id": "c", "method": "sleep", "params": map[string]any{"seconds": 60, "tag": "control-c"}})
	w.sendControl(map[string]any{"jsonrpc": "2.0", "method": "$/cancelRequest", "params": map[string]any{"id": "c"}})
	if note := w.readControl(); note["method"] != "cancelObserved" {
		t.Fatalf("expected cancelObserved, got %v", note)
	}
	if r := w.readControl(); r["id"] != "c" || errorCode(t, r) != CodeRequestCancelled {
		t.Fatalf("cancelled control request answered %v", r)
	}
}
