package aspectipc

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ---- the test parent -----------------------------------------------------------------------

// testToken is the token the test parent gives its workers.
var testToken = strings.Repeat("ab", 32)

// workerProcess is a helper worker started by a test, seen from the parent's side.
type workerProcess struct {
	t        *testing.T
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	lines    chan string // stdout, line by line
	stdoutR  *os.File
	stderrR  *os.File
	stderrMu sync.Mutex
	stderr   strings.Builder
	dataPath string
	drained  chan struct{} // closed when stderr reached EOF (drainStderr mode)
	exited   chan struct{}
	exitErr  error
}

// shortTempDir returns a fresh directory under /tmp: Unix socket paths must stay under 107 bytes.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "aipc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

type workerOptions struct {
	dataPath    string            // "" = control only
	env         map[string]string // extra environment
	drainStderr bool              // read stderr in the background (otherwise the test reads it)
	newSession  bool              // start the worker as the leader of a new session, like the parent does
	documented  bool              // run documentedWorkerMain (the README's main) instead of helperWorkerMain
}

func startWorker(t *testing.T, opts workerOptions) *workerProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// GORACE: a race-detector child otherwise sleeps 1 s at exit.
	helper := "GO_WANT_HELPER_PROCESS=1"
	if opts.documented {
		helper = "GO_WANT_HELPER_PROCESS=documented"
	}
	cmd.Env = append(os.Environ(), helper, "GORACE=atexit_sleep_ms=100", "ASPECT_IPC_PROTOCOL=1",
		"ASPECT_IPC_WORKER_ID=worker-1", "ASPECT_IPC_NAMESPACE=tests")
	if opts.dataPath != "" {
		cmd.Env = append(cmd.Env, "ASPECT_IPC_DATA_PATH="+opts.dataPath, "ASPECT_IPC_TOKEN="+testToken)
	}
	for k, v := range opts.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if opts.newSession {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Our own pipes, not StdoutPipe: cmd.Wait closes those as soon as the process exits, which
	// could drop the last lines before the reader got them.
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = stdoutW
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderrW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stderrW.Close()
	stdoutW.Close()
	w := &workerProcess{t: t, cmd: cmd, stdin: stdin, lines: make(chan string, 100), stdoutR: stdout, stderrR: stderrR,
		dataPath: opts.dataPath, drained: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		scanner := bufio.NewScanner(stdout)
		scanner.Buffer(make([]byte, 1<<20), 4<<20)
		for scanner.Scan() {
			w.lines <- scanner.Text()
		}
		close(w.lines)
	}()
	if opts.drainStderr {
		go w.drainStderr()
	}
	go func() {
		w.exitErr = cmd.Wait()
		close(w.exited)
	}()
	t.Cleanup(func() {
		w.stdin.Close()
		select {
		case <-w.exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-w.exited
		}
		stderrR.Close()
		stdout.Close()
	})
	return w
}

func (w *workerProcess) drainStderr() {
	defer close(w.drained)
	buf := make([]byte, 4096)
	for {
		n, err := w.stderrR.Read(buf)
		w.stderrMu.Lock()
		w.stderr.Write(buf[:n])
		w.stderrMu.Unlock()
		if err != nil {
			return
		}
	}
}

// stderrText returns what the worker wrote to stderr so far (drainStderr mode).
func (w *workerProcess) stderrText() string {
	w.stderrMu.Lock()
	defer w.stderrMu.Unlock()
	return w.stderr.String()
}

// waitStderr waits until stderr contains s (drainStderr mode).
func (w *workerProcess) waitStderr(s string) {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(w.stderrText(), s) {
		if time.Now().After(deadline) {
			w.t.Fatalf("stderr never contained %q; it has:\n%s", s, w.stderrText())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readLine returns the next stdout line.
func (w *workerProcess) readLine() string {
	w.t.Helper()
	select {
	case line, ok := <-w.lines:
		if !ok {
			code := w.waitExit()
			w.t.Fatalf("stdout closed, exit code %d; stderr:\n%s", code, w.stderrText())
		}
		return line
	case <-time.After(10 * time.Second):
		w.t.Fatalf("no stdout line within 10 s; stderr:\n%s", w.stderrText())
	}
	return ""
}

// readControl returns the next control message.
func (w *workerProcess) readControl() map[string]any {
	w.t.Helper()
	line := w.readLine()
	v, err := JSONCodec{}.Decode([]byte(line))
	m, ok := v.(map[string]any)
	if err != nil || !ok {
		w.t.Fatalf("stdout line is not a JSON-RPC message: %q (%v)", line, err)
	}
	return m
}

func (w *workerProcess) sendLine(line string) {
	w.t.Helper()
	if _, err := io.WriteString(w.stdin, line+"\n"); err != nil {
		w.t.Fatal(err)
	}
}

func (w *workerProcess) sendControl(msg map[string]any) {
	w.t.Helper()
	out, err := JSONCodec{}.Encode(msg)
	if err != nil {
		w.t.Fatal(err)
	}
	w.sendLine(string(out))
}

// ready reads the $/ready notification.
func (w *workerProcess) ready() map[string]any {
	w.t.Helper()
	msg := w.readControl()
	if msg["method"] != "$/ready" {
		w.t.Fatalf("first message is not $/ready: %v", msg)
	}
	return msg["params"].(map[string]any)
}

// waitExit waits for the process to end and returns its exit code.
func (w *workerProcess) waitExit() int {
	w.t.Helper()
	select {
	case <-w.exited:
	case <-time.After(10 * time.Second):
		w.t.Fatalf("worker did not exit within 10 s; stderr:\n%s", w.stderrText())
	}
	select { // let the stderr reader catch up with everything the worker wrote
	case <-w.drained:
	case <-time.After(10 * time.Second):
	}
	var exitErr *exec.ExitError
	if errors.As(w.exitErr, &exitErr) {
		return exitErr.ExitCode()
	}
	if w.exitErr != nil {
		w.t.Fatal(w.exitErr)
	}
	return 0
}

func (w *workerProcess) signal(sig syscall.Signal) {
	if err := w.cmd.Process.Signal(sig); err != nil {
		w.t.Fatal(err)
	}
}

// dataConn is a raw data connection, speaking frames and MessagePack by hand.
type dataConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialData(t *testing.T, path string) *dataConn {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &dataConn{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (d *dataConn) writeRaw(b []byte) {
	d.t.Helper()
	if _, err := d.conn.Write(b); err != nil {
		d.t.Fatal(err)
	}
}

func (d *dataConn) send(msg map[string]any) {
	d.t.Helper()
	payload, err := MessagePackCodec{}.Encode(msg)
	if err != nil {
		d.t.Fatal(err)
	}
	frame, _ := LengthPrefixedFraming{}.Encode(payload)
	d.writeRaw(frame)
}

// read returns the next message, or nil at EOF.
func (d *dataConn) read() map[string]any {
	d.t.Helper()
	d.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var header [4]byte
	if _, err := io.ReadFull(d.r, header[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return nil
		}
		d.t.Fatalf("reading a frame header: %v", err)
	}
	payload := make([]byte, binary.BigEndian.Uint32(header[:]))
	if _, err := io.ReadFull(d.r, payload); err != nil {
		d.t.Fatalf("reading a frame payload: %v", err)
	}
	v, err := MessagePackCodec{}.Decode(payload)
	if err != nil {
		d.t.Fatalf("frame %s: %v", hex.EncodeToString(payload), err)
	}
	return v.(map[string]any)
}

// expectEOF checks that the worker closed the connection (after any messages it sent first).
func (d *dataConn) expectEOF() {
	d.t.Helper()
	for i := 0; i < 3; i++ {
		if msg := d.read(); msg == nil {
			return
		} else if i == 2 {
			d.t.Fatalf("connection still open, last message %v", msg)
		}
	}
}

func (d *dataConn) hello(token string) map[string]any {
	d.t.Helper()
	d.send(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "$/hello",
		"params": map[string]any{"token": token, "protocol": 1}})
	return d.read()
}

// connect dials the worker's socket and authenticates.
func (w *workerProcess) connect() *dataConn {
	w.t.Helper()
	d := dialData(w.t, w.dataPath)
	resp := d.hello(testToken)
	if resp["result"] == nil {
		w.t.Fatalf("$/hello failed: %v", resp)
	}
	return d
}

// call sends a request on the data connection and returns the response.
func (d *dataConn) call(id int, method string, params any) map[string]any {
	d.t.Helper()
	msg := map[string]any{"jsonrpc": "2.0", "id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	d.send(msg)
	return d.read()
}

// call sends a request on control and returns the response.
func (w *workerProcess) call(id int, method string, params any) map[string]any {
	w.t.Helper()
	msg := map[string]any{"jsonrpc": "2.0", "id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	w.sendControl(msg)
	return w.readControl()
}

func errorCode(t *testing.T, msg map[string]any) int64 {
	t.Helper()
	e, ok := msg["error"].(map[string]any)
	if !ok {
		t.Fatalf("not an error response: %v", msg)
	}
	return e["code"].(int64)
}
