//go:build unix

package aspectipc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// PipeServer is the worker's data channel listener: a Unix domain socket at the data path,
// created with mode 0600 (PROTOCOL.md 7.3).
type PipeServer struct {
	path     string
	listener *net.UnixListener
	dev, ino uint64 // identity of the socket file we created
	once     sync.Once
}

// probeTimeout bounds the connection attempt that tells a live socket from a stale one.
const probeTimeout = 2 * time.Second

// umaskMu serializes the process-wide umask change around bind.
var umaskMu sync.Mutex

// ListenPipe listens on a Unix domain socket at path. If a file already exists there, it is
// checked without following symlinks: a socket nobody listens on is stale and removed; a socket
// that accepts a connection belongs to a live worker (ErrAddressInUse); anything else is never
// removed (ErrNotSocket). The socket is created with mode 0600.
func ListenPipe(path string) (*PipeServer, error) {
	if err := clearStaleSocket(path); err != nil {
		return nil, err
	}
	umaskMu.Lock()
	old := syscall.Umask(0o177) // no window in which others may connect
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	umaskMu.Unlock()
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%w: %s", ErrAddressInUse, path)
		}
		return nil, fmt.Errorf("cannot listen on %s: %w", path, err)
	}
	// Removal is ours to decide (only if the file is still the one we created), not net's.
	l.SetUnlinkOnClose(false)
	s := &PipeServer{path: path, listener: l}
	fi, err := os.Lstat(path)
	if err == nil {
		err = os.Chmod(path, 0o600)
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("cannot secure the socket %s: %w", path, err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.dev, s.ino = uint64(st.Dev), uint64(st.Ino)
	}
	return s, nil
}

func clearStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot inspect %s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("%w: %s", ErrNotSocket, path)
	}
	conn, err := net.DialTimeout("unix", path, probeTimeout)
	if err == nil {
		conn.Close()
		return fmt.Errorf("%w: %s", ErrAddressInUse, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("cannot tell whether the socket %s is live: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot remove the stale socket %s: %w", path, err)
	}
	return nil
}

// Path returns the socket's path.
func (s *PipeServer) Path() string { return s.path }

// Accept waits for the next connection. Its send buffer is raised to sendBuffer.
func (s *PipeServer) Accept() (net.Conn, error) {
	conn, err := s.listener.Accept()
	if err == nil {
		widenSendBuffer(conn)
	}
	return conn, err
}

// sendBuffer is the send buffer of a data connection. A Unix stream socket's send buffer bounds
// the bytes on their way to the peer; Linux's default (about 208 KiB) cuts a 1 MiB message into
// five or more writes, each a wait for room. The kernel caps it at net.core.wmem_max.
const sendBuffer = 1 << 20

// widenSendBuffer raises conn's send buffer to sendBuffer unless it is larger already; a
// refusal leaves the default (slower, not wrong).
func widenSendBuffer(conn net.Conn) {
	unix, ok := conn.(*net.UnixConn)
	if !ok {
		return
	}
	withFD(unix, func(fd int) {
		// Linux reports twice what was set: its bookkeeping share.
		size, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF)
		if err == nil && size < 2*sendBuffer {
			_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, sendBuffer)
		}
	})
}

// withFD runs f with conn's descriptor, held open meanwhile; nothing if conn has none any more
// (closed): each caller's step is best effort.
func withFD(conn *net.UnixConn, f func(fd int)) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) { f(int(fd)) })
}

// Close stops listening and removes the socket file if it is still the one this server
// created (a file put there by someone else since is left alone).
func (s *PipeServer) Close() error {
	var err error
	s.once.Do(func() {
		err = s.listener.Close()
		fi, statErr := os.Lstat(s.path)
		if statErr != nil {
			return
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && uint64(st.Dev) == s.dev && uint64(st.Ino) == s.ino {
			if rmErr := os.Remove(s.path); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
				err = errors.Join(err, rmErr)
			}
		}
	})
	return err
}

// DialPipe connects to the Unix domain socket at path: the parent's side of the data channel,
// useful for tests and for programs that compose their own parent.
func DialPipe(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err == nil {
		widenSendBuffer(conn)
	}
	return conn, err
}
