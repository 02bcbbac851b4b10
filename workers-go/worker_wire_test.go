package aspectipc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Process tests of the spec 1.1 wire rules, against the helper worker.

func errorOf(t *testing.T, msg map[string]any) map[string]any {
	t.Helper()
	e, ok := msg["error"].(map[string]any)
	if !ok {
		t.Fatalf("not an error response: %v", msg)
	}
	return e
}

// A message that does not decode for a reason other than its syntax is answered -32700 with the
// request's id, on both channels (PROTOCOL.md 4.8); the channels stay usable.
func TestWorkerParseErrorsRecoverTheID(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true})
	w.ready()
	d := w.connect()
	lines := map[string]any{
		`{"jsonrpc":"2.0","id":7,"method":"echo","params":["a\ud800b"]}`:                                                int64(7),
		`{"jsonrpc":"2.0","id":"s","method":"echo","params":[1e400]}`:                                                   "s",
		`{"jsonrpc":"2.0","id":8,"method":"echo","params":[18446744073709551616]}`:                                      int64(8),
		`{"jsonrpc":"2.0","id":9,"method":"echo","params":` + strings.Repeat("[", 512) + strings.Repeat("]", 512) + `}`: int64(9),
		`{"jsonrpc":"2.0","id":10,"method":"echo","params":[1,}`:                                                        nil, // not JSON
		`{"jsonrpc":"2.0","method":"echo","params":["\udc00"]}`:                                                         nil, // no id
	}
	for line, id := range lines {
		w.sendLine(line)
		r := w.readControl()
		if errorCode(t, r) != CodeParseError || !sameValue(r["id"], id) {
			t.Fatalf("%.60s: answered %v, want -32700 with id %v", line, r, id)
		}
	}
	// A message exactly 512 deep is fine: its result is 512 deep too.
	deep := `{"jsonrpc":"2.0","id":11,"method":"echo","params":` + strings.Repeat("[", 511) + strings.Repeat("]", 511) + `}`
	w.sendLine(deep)
	if r := w.readControl(); r["id"] != int64(11) || r["error"] != nil {
		t.Fatalf("a message 512 deep: %.200v", r)
	}
	// {"jsonrpc":"2.0","id":7,"method":"echo","params":[<ext 5>]}: an ext type inside params.
	ext := "84a76a736f6e727063a3322e30a2696407a66d6574686f64a46563686fa6706172616d7391d40501"
	frames := map[string]any{
		ext:              int64(7),
		ext[:len(ext)-2]: nil, // truncated: not one readable map
		"84a6706172616d73810102a2696409a66d6574686f64a46563686fa76a736f6e727063a3322e30": int64(9), // an integer key in params
	}
	for hexFrame, id := range frames {
		payload := unhex(t, hexFrame)
		header := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
		d.writeRaw(append(header, payload...))
		if r := d.read(); errorCode(t, r) != CodeParseError || !sameValue(r["id"], id) {
			t.Fatalf("frame %s: answered %v, want -32700 with id %v", hexFrame, r, id)
		}
	}
	if r := d.call(12, "echo", []any{"still here"}); !sameValue(r["result"], []any{"still here"}) {
		t.Fatalf("data channel after the parse errors: %v", r)
	}
}

// Floats stay floats and integers stay exact on control, both ways (PROTOCOL.md 3.1).
func TestWorkerEchoesNumbersExactlyOnControl(t *testing.T) {
	t.Parallel()
	w := startWorker(t, workerOptions{drainStderr: true})
	w.ready()
	w.sendLine(`{"jsonrpc":"2.0","id":1,"method":"echo","params":[-0.0,1.0,1e300,5e-324,0.1,-0,18446744073709551615,-9223372036854775808]}`)
	want := `{"id":1,"jsonrpc":"2.0","result":[-0.0,1.0,1e+300,5e-324,0.1,0,18446744073709551615,-9223372036854775808]}`
	if got := w.readLine(); got != want {
		t.Fatalf("echo answered\n%s\nwant\n%s", got, want)
	}
}

// Size errors state exact byte counts (PROTOCOL.md 12), and any response over the peer's limit,
// error responses included, is replaced by a -32005 with the same id (4.9).
func TestWorkerSizeErrors(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true,
		env: map[string]string{"ASPECT_IPC_MAX_FRAME_SIZE": "1024", "ASPECT_IPC_MAX_LINE_LENGTH": "1024"}})
	w.ready()
	d := w.connect()
	check := func(r map[string]any, id any, message string, data map[string]any) {
		t.Helper()
		e := errorOf(t, r)
		if e["code"] != int64(CodeMessageTooLarge) || !sameValue(r["id"], id) || e["message"] != message || !sameValue(e["data"], data) {
			t.Fatalf("answered %v, want -32005 id %v %q %v", r, id, message, data)
		}
	}
	// Responses over the limit, on control (lines) and data (frames): the message gives the size
	// of what would have been sent.
	long := strings.Repeat("x", 2000)
	size := func(codec Codec, msg map[string]any) int64 {
		out, err := codec.Encode(msg)
		if err != nil {
			t.Fatal(err)
		}
		return int64(len(out))
	}
	rpc := JSONRPCProtocol{}
	for i, c := range []struct {
		codec Codec
		call  func(int, string, any) map[string]any
		limit string
	}{{JSONCodec{}, w.call, "max_line_length"}, {MessagePackCodec{}, d.call, "max_frame_size"}} {
		id := int64(10*i + 1)
		n := size(c.codec, rpc.Response(IntID(id), long))
		check(c.call(int(id), "repeat", map[string]any{"n": 2000}), id, fmt.Sprintf("response of %d bytes exceeds %s of 1024 bytes", n, c.limit),
			map[string]any{"size": n, "limit": int64(1024)})
		id++
		n = size(c.codec, rpc.ErrorResponse(IntID(id), &Error{Code: 42, Message: long}))
		check(c.call(int(id), "failBig", map[string]any{"n": 2000}), id, fmt.Sprintf("response of %d bytes exceeds %s of 1024 bytes", n, c.limit),
			map[string]any{"size": n, "limit": int64(1024)})
	}
	// A line over the limit: its size is known if it was read whole, "more than" otherwise; the
	// channel goes on.
	w.sendLine(strings.Repeat("x", 3000))
	if r := w.readControl(); errorOf(t, r)["data"].(map[string]any)["size"] == nil {
		check(r, nil, "line of more than 1024 bytes exceeds max_line_length of 1024 bytes", map[string]any{"limit": int64(1024)})
	} else {
		check(r, nil, "line of 3000 bytes exceeds max_line_length of 1024 bytes", map[string]any{"size": int64(3000), "limit": int64(1024)})
	}
	if r := w.call(5, "echo", []any{int64(5)}); !sameValue(r["result"], []any{int64(5)}) {
		t.Fatalf("control after a long line: %v", r)
	}
	// A frame header over the limit on the authenticated connection: one -32005, then the close,
	// without waiting for the payload (none is sent).
	d.writeRaw([]byte{0, 0, 4, 1})
	check(d.read(), nil, "frame of 1025 bytes exceeds max_frame_size of 1024 bytes", map[string]any{"size": int64(1025), "limit": int64(1024)})
	d.expectEOF()
}

// $/hello on a new connection: before authentication a frame over 64 KiB closes the connection at
// once and silently; after it, a second $/hello is -32600 and $/shutdown -32601, both keeping the
// connection (PROTOCOL.md 7.4, 8.1).
func TestWorkerHelloRules(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true})
	w.ready()
	big := dialData(t, path)
	big.writeRaw([]byte{0, 1, 0, 1}) // 65537 bytes declared: no reply, closed
	if r := big.read(); r != nil {
		t.Fatalf("an oversized first frame was answered: %v", r)
	}
	exact := dialData(t, path)
	exact.writeRaw(append([]byte{0, 1, 0, 0}, make([]byte, 65536)...)) // read, does not decode
	if r := exact.read(); errorCode(t, r) != CodeUnauthorized || r["id"] != nil {
		t.Fatalf("a 64 KiB junk first frame: %v", r)
	}
	exact.expectEOF()

	d := w.connect()
	d.send(map[string]any{"jsonrpc": "2.0", "id": 2, "method": "$/hello", "params": map[string]any{"token": testToken, "protocol": 1}})
	if r := d.read(); errorCode(t, r) != CodeInvalidRequest || r["id"] != int64(2) || errorOf(t, r)["message"] != "Invalid Request: already authenticated" {
		t.Fatalf("second $/hello: %v", r)
	}
	d.send(map[string]any{"jsonrpc": "2.0", "method": "$/hello", "params": map[string]any{"token": testToken, "protocol": 1}})
	d.send(map[string]any{"jsonrpc": "2.0", "method": "$/shutdown"})
	if r := d.call(3, "$/shutdown", nil); errorCode(t, r) != CodeMethodNotFound || errorOf(t, r)["message"] != "$/shutdown is a control-channel method" {
		t.Fatalf("$/shutdown on data: %v", r)
	}
	// After all that the connection still carries traffic (above 64 KiB too), and the worker runs.
	blob := make([]byte, 100_000)
	if r := d.call(4, "echo", []any{blob}); !sameValue(r["result"], []any{blob}) {
		t.Fatal("echo of 100 kB after the handshake failed")
	}
	if r := w.call(5, "echo", []any{"alive"}); !sameValue(r["result"], []any{"alive"}) {
		t.Fatalf("control: %v", r)
	}
}

// $/shutdown params (PROTOCOL.md 8.1): invalid ones are -32602 and nothing shuts down; as a
// notification on control it shuts down without answering.
func TestWorkerShutdownParams(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true})
	w.ready()
	w.connect()
	for i, params := range []any{map[string]any{"timeout": -1}, map[string]any{"timeout": "soon"}, map[string]any{"timeout": true}, []any{5}} {
		if r := w.call(i+1, "$/shutdown", params); errorCode(t, r) != CodeInvalidParams || r["id"] != int64(i+1) {
			t.Fatalf("$/shutdown %v: %v", params, r)
		}
	}
	if r := w.call(9, "echo", []any{"alive"}); !sameValue(r["result"], []any{"alive"}) {
		t.Fatalf("after refused shutdowns: %v", r)
	}
	w.sendControl(map[string]any{"jsonrpc": "2.0", "method": "$/shutdown", "params": map[string]any{"timeout": "bad"}})
	if code := w.waitExit(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for line := range w.lines {
		t.Fatalf("the $/shutdown notification was answered: %s", line)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left behind: %v", err)
	}
}

// The size variables' grammar (PROTOCOL.md 5): empty is the default, anything but plain digits in
// [1024, 2^32 - 1] a refusal to start, exit code 2, naming the variable, the value and the rule.
func TestWorkerSizeVariables(t *testing.T) {
	t.Parallel()
	w := startWorker(t, workerOptions{drainStderr: true, env: map[string]string{"ASPECT_IPC_MAX_FRAME_SIZE": "", "ASPECT_IPC_MAX_LINE_LENGTH": ""}})
	w.ready()
	if r := w.call(1, "repeat", map[string]any{"n": 100_000}); r["error"] != nil {
		t.Fatalf("the default line length does not apply: %v", r)
	}
	for _, name := range []string{EnvMaxFrameSize, EnvMaxLineLength} {
		for _, value := range []string{"+4096", " 4096", "4096 ", "0", "1023", "4294967296", "0x1000"} {
			w := startWorker(t, workerOptions{drainStderr: true, env: map[string]string{name: value}})
			code := w.waitExit()
			want := "invalid " + name + ` "` + value + `": expected 1 to 10 ASCII digits`
			if code != 2 || !strings.Contains(w.stderrText(), want) || strings.Count(strings.TrimSpace(w.stderrText()), "\n") != 0 {
				t.Fatalf("%s=%q: exit code %d, stderr %q", name, value, code, w.stderrText())
			}
		}
	}
}
