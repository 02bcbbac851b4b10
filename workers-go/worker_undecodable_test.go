package aspectipc

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// A handler that calls the parent gets a protocol error at once when the parent's answer does not
// decode, on control and on data, and nothing is sent back (PROTOCOL.md 4.8). Helper worker.
func TestWorkerUndecodableAnswerFailsTheHandlersCall(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true})
	w.ready()
	d := w.connect()
	protocolError := func(r map[string]any, id int64, detail string) {
		t.Helper()
		e := errorOf(t, r)
		msg, _ := e["message"].(string)
		if r["id"] != id || e["code"] != int64(CodeHandlerError) || !sameValue(e["data"], map[string]any{"type": "aspectipc.ProtocolError"}) ||
			!strings.Contains(msg, "cannot be decoded") || !strings.Contains(msg, detail) {
			t.Fatalf("answered %v, want the handler's *ProtocolError naming %q", r, detail)
		}
	}

	// Control: the parent answers the handler's request with an integer out of range.
	w.sendControl(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "callParent",
		"params": map[string]any{"method": "ask", "via": "control"}})
	req := w.readControl()
	w.sendLine(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":[18446744073709551616]}`, req["id"]))
	protocolError(w.readControl(), 1, "18446744073709551616") // the next line: no -32700 came first

	// Not recovered: an unknown id, then text that is not JSON, are answered -32700 with id null,
	// and the handler's request still takes its real answer.
	w.sendControl(map[string]any{"jsonrpc": "2.0", "id": 2, "method": "callParent",
		"params": map[string]any{"method": "ask", "via": "control"}})
	req = w.readControl()
	for _, line := range []string{
		fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":[18446744073709551616]}`, req["id"].(int64)+100),
		fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":[1,}`, req["id"]),
	} {
		w.sendLine(line)
		if r := w.readControl(); errorCode(t, r) != CodeParseError || r["id"] != nil {
			t.Fatalf("%s: answered %v, want -32700 with id null", line, r)
		}
	}
	w.sendControl(map[string]any{"jsonrpc": "2.0", "id": req["id"], "result": "real"})
	if r := w.readControl(); r["id"] != int64(2) || r["result"] != "real" {
		t.Fatalf("callParent after the unrecovered answers: %v", r)
	}

	// Data: the parent answers with an ext type inside the result.
	d.send(map[string]any{"jsonrpc": "2.0", "id": 3, "method": "callParent",
		"params": map[string]any{"method": "ask", "via": "data"}})
	req = d.read()
	payload := mpAnswer(req["id"].(int64), "result", []byte{0x91, 0xd4, 0x05, 0x01})
	d.writeRaw(append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...))
	protocolError(d.read(), 3, "ext type 5")
	if r := d.call(4, "echo", []any{"still here"}); !sameValue(r["result"], []any{"still here"}) {
		t.Fatalf("data channel after the undecodable answer: %v", r)
	}
}
