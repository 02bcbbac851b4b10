package aspectipc

import (
	"path/filepath"
	"testing"
)

// $/shutdown waits for an inline handler running on the data channel, as for any other: its
// response is written before the $/shutdown response, and the worker exits cleanly.
func TestWorkerShutdownDrainsInlineHandlers(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortTempDir(t), "w.sock")
	w := startWorker(t, workerOptions{dataPath: path, drainStderr: true,
		env: map[string]string{"HELPER_INLINE": "announceSleep,echo,callParent"}})
	w.ready()
	d := w.connect()
	if r := d.call(2, "echo", []any{"inline"}); !sameValue(r["result"], []any{"inline"}) {
		t.Fatalf("echo: %v", r)
	}
	// The deadlock guard through Serve: an inline handler calling the parent on its own channel.
	r := d.call(3, "callParent", map[string]any{"method": "anything", "via": "data"})
	if errorCode(t, r) != CodeInternalError {
		t.Fatalf("callParent from an inline handler: %v", r)
	}
	d.send(map[string]any{"jsonrpc": "2.0", "id": 4, "method": "announceSleep", "params": map[string]any{"seconds": 0.3}})
	if note := w.readControl(); note["method"] != "started" {
		t.Fatalf("want the started notification, got %v", note)
	}
	w.sendControl(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "$/shutdown", "params": map[string]any{"timeout": 5}})
	if r := d.read(); r["id"] != int64(4) || r["result"] != "done" {
		t.Fatalf("inline request during shutdown: %v", r)
	}
	if r := w.readControl(); r["id"] != int64(1) || r["result"] != nil || r["error"] != nil {
		t.Fatalf("$/shutdown answered %v", r)
	}
	d.expectEOF()
	if code := w.waitExit(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}
