package aspectipc

import (
	"path/filepath"
	"testing"
)

// The stream checks against a real worker process, on its data socket: countTo with window 2 and
// a slow consumer, sumStream, echoStream, and a cancel while the producer waits for credit.
func TestStreamsWithAWorkerProcess(t *testing.T) {
	w := startWorker(t, workerOptions{dataPath: filepath.Join(shortTempDir(t), "d.sock"), drainStderr: true})
	w.ready()
	p := wrapStreamPeer(t, w.connect().conn)
	t.Run("window", func(t *testing.T) { p.t = t; checkStreamWindow(t, p) })
	t.Run("sum", func(t *testing.T) { p.t = t; checkStreamSum(t, p) })
	t.Run("echo", func(t *testing.T) { p.t = t; checkStreamEcho(t, p) })
	t.Run("cancel", func(t *testing.T) { p.t = t; checkStreamCancel(t, p) })
}
