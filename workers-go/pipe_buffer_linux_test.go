package aspectipc

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Both ends of a data connection made here get a send buffer of sendBuffer (or the system's
// cap): a 1 MiB message leaves in one write instead of five waits for room.
func TestDataConnectionsHaveAWideSendBuffer(t *testing.T) {
	want := sendBuffer
	if raw, err := os.ReadFile("/proc/sys/net/core/wmem_max"); err == nil {
		if limit, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil && limit < want {
			want = limit
		}
	}
	want *= 2 // Linux reports twice what was set: its bookkeeping share

	s, err := ListenPipe(filepath.Join(shortTempDir(t), "b.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := s.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	dialed, err := DialPipe(context.Background(), s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer dialed.Close()
	worker := <-accepted
	if worker == nil {
		t.FailNow()
	}
	defer worker.Close()
	for name, conn := range map[string]net.Conn{"accepted": worker, "dialed": dialed} {
		if got := sendBufferOf(t, conn); got < want {
			t.Errorf("%s connection: SO_SNDBUF %d, want at least %d", name, got, want)
		}
	}
}

func sendBufferOf(t *testing.T, conn net.Conn) int {
	t.Helper()
	raw, err := conn.(*net.UnixConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	var optErr error
	if err := raw.Control(func(fd uintptr) {
		size, optErr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	}); err != nil || optErr != nil {
		t.Fatal(err, optErr)
	}
	return size
}
