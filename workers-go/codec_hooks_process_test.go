package aspectipc

import (
	"path/filepath"
	"strings"
	"testing"
)

// Codec hooks that panic fail the message they were applied to, as if they returned an error, and
// the worker goes on serving (PROTOCOL.md 3.5, 4.8, 4.9): a request whose params the decode hook
// panics on is answered -32700 with its id; a result the encode hook panics on is answered -32603;
// a handler's own request gets a *CodecError, and the answer to it a *ProtocolError. The same on
// both channels, as with the Python and Node SDKs. Helper worker, HELPER_CODEC_HOOKS=panic.
func TestWorkerSurvivesPanickingCodecHooks(t *testing.T) {
	t.Parallel()
	w := startWorker(t, workerOptions{dataPath: filepath.Join(shortTempDir(t), "w.sock"), drainStderr: true,
		env: map[string]string{"HELPER_CODEC_HOOKS": "panic"}})
	w.ready()
	d := w.connect()
	sides := []struct {
		name, codec string
		call        func(id int, method string, params any) map[string]any
		send        func(map[string]any)
		read        func() map[string]any
	}{
		{"control", "json", w.call, w.sendControl, w.readControl},
		{"data", "msgpack", d.call, d.send, d.read},
	}
	failure := func(r map[string]any, id int64, code int, parts ...string) {
		t.Helper()
		e := errorOf(t, r)
		msg, _ := e["message"].(string)
		if r["id"] != id || e["code"] != int64(code) {
			t.Fatalf("answered %v, want error %d for id %d", r, code, id)
		}
		for _, part := range parts {
			if !strings.Contains(msg, part) {
				t.Fatalf("answered %q, want it to say %q", msg, part)
			}
		}
	}
	for _, s := range sides {
		failure(s.call(1, "echo", map[string]any{"list": []any{map[string]any{"boom": 1}}}), 1, CodeParseError,
			s.codec+" codec: decode hook failed at $.params.list[0]: panic: decode hook panic")
		failure(s.call(2, "complex", nil), 2, CodeInternalError,
			"the result cannot be encoded: "+s.codec+" codec: encode hook failed on complex128 at $.result: panic: encode hook panic")
		r := s.call(3, "askComplex", nil)
		failure(r, 3, CodeHandlerError, s.codec+" codec: encode hook failed on complex128 at $.params[0]: panic: encode hook panic")
		if data := errorData(t, r); data["type"] != "aspectipc.CodecError" {
			t.Fatalf("%s: the handler's request failed with %v, want a *CodecError", s.name, data)
		}
		s.send(map[string]any{"jsonrpc": "2.0", "id": 4, "method": "callParent", "params": map[string]any{"method": "ask", "via": s.name}})
		req := s.read()
		if req["method"] != "ask" {
			t.Fatalf("%s: the parent got %v", s.name, req)
		}
		s.send(map[string]any{"jsonrpc": "2.0", "id": req["id"], "result": map[string]any{"boom": 1}})
		r = s.read()
		failure(r, 4, CodeHandlerError, "cannot be decoded", "decode hook failed at $.result: panic: decode hook panic")
		if data := errorData(t, r); data["type"] != "aspectipc.ProtocolError" {
			t.Fatalf("%s: the handler's request failed with %v, want a *ProtocolError", s.name, data)
		}
		if r := s.call(5, "echo", []any{"alive"}); !sameValue(r["result"], []any{"alive"}) {
			t.Fatalf("%s: after the hooks' panics: %v", s.name, r)
		}
	}
	select {
	case <-w.exited:
		t.Fatalf("the worker exited:\n%s", w.stderrText())
	default:
	}
}
