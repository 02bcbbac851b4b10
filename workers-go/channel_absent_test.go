package aspectipc

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// WorkerFrom(ctx).Data() is nil without a connected data channel; calls on it fail with a typed
// -32008 that says why, rather than a nil pointer dereference.

func TestNilChannelCallsFail(t *testing.T) {
	t.Parallel()
	var ch *Channel
	noData := context.WithValue(context.Background(), workerKey, &Worker{})
	notConnected := context.WithValue(context.Background(), workerKey, &Worker{env: environment{dataPath: "/tmp/w.sock"}})
	for _, c := range []struct {
		ctx context.Context
		why string
	}{
		{noData, "this worker has no data channel (ASPECT_IPC_DATA_PATH is not set)"},
		{notConnected, "the data channel is not connected"},
		{context.Background(), "there is no channel"},
	} {
		_, reqErr := ch.Request(c.ctx, "ask", nil)
		_, streamErr := ch.RequestStream(c.ctx, "produce", nil, StreamOptions{OutWindow: 1})
		for _, err := range []error{reqErr, ch.Notify(c.ctx, "tell", nil), streamErr} {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeChannelClosed || !errors.Is(err, ErrChannelClosed) || !strings.Contains(e.Message, c.why) {
				t.Fatalf("%v, want -32008 saying %q", err, c.why)
			}
		}
	}
	if !errors.Is(ch.Handle("m", nil), ErrChannelClosed) || !errors.Is(ch.Run(context.Background()), ErrChannelClosed) ||
		ch.Close() != nil || ch.Name() != "" {
		t.Fatal("the other methods of a nil *Channel")
	}
	<-ch.Done()
}

// A handler calling WorkerFrom(ctx).Data().Request gets the -32008 and may return it as it is.
// Helper worker.
func TestWorkerDataCallWithoutDataChannel(t *testing.T) {
	t.Parallel()
	call := func(w *workerProcess, why string) {
		t.Helper()
		r := w.call(1, "callParent", map[string]any{"method": "ask", "via": "data"})
		e := errorOf(t, r)
		if e["code"] != int64(CodeChannelClosed) || !strings.Contains(e["message"].(string), why) {
			t.Fatalf("callParent via data: %v, want -32008 saying %q", r, why)
		}
	}
	t.Run("none configured", func(t *testing.T) {
		t.Parallel()
		w := startWorker(t, workerOptions{drainStderr: true})
		w.ready()
		call(w, `request "ask": this worker has no data channel (ASPECT_IPC_DATA_PATH is not set)`)
	})
	t.Run("not yet connected", func(t *testing.T) {
		t.Parallel()
		w := startWorker(t, workerOptions{dataPath: filepath.Join(shortTempDir(t), "w.sock"), drainStderr: true})
		w.ready()
		call(w, `request "ask": the data channel is not connected`)
	})
}
