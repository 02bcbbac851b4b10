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

// socketMode is the data socket's mode (PROTOCOL.md 7.3): only the worker's user may connect.
const socketMode = 0o600

// testHookAfterBind, when set (by tests), runs right after the socket file is created, before it
// is checked: a test can look at the file as bind left it, or swap something in its place.
var testHookAfterBind func(path string)

// ListenPipe listens on a Unix domain socket at path. If a file already exists there, it is
// checked without following symlinks: a socket nobody listens on is stale and removed; a socket
// that accepts a connection belongs to a live worker (ErrAddressInUse); anything else is never
// removed (ErrNotSocket). The socket file is created with mode 0600 by bind itself, whatever the
// process umask; its mode is never changed by path afterwards (a chmod by path would follow a
// symlink swapped in meanwhile). If the path no longer holds a socket of this user's with that
// mode once listening, ListenPipe fails rather than let $/ready announce it.
func ListenPipe(path string) (*PipeServer, error) {
	if err := clearStaleSocket(path); err != nil {
		return nil, err
	}
	l, err := listenUnix0600(path)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%w: %s", ErrAddressInUse, path)
		}
		return nil, fmt.Errorf("cannot listen on %s: %w", path, err)
	}
	// Removal is ours to decide (only if the file is still the one we created), not net's.
	l.SetUnlinkOnClose(false)
	if testHookAfterBind != nil {
		testHookAfterBind(path)
	}
	s := &PipeServer{path: path, listener: l}
	if err := s.checkSocketFile(); err != nil {
		l.Close()
		return nil, err
	}
	return s, nil
}

// checkSocketFile makes sure, with lstat, that the file at s.path is a socket owned by this
// process's user with mode 0600, and records its identity for Close. Someone who can write to
// the directory may have put something else there since bind: that fails start-up, and what is
// there is left alone.
func (s *PipeServer) checkSocketFile() error {
	fi, err := os.Lstat(s.path)
	if err != nil {
		return fmt.Errorf("cannot inspect the socket %s after bind: %w", s.path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("cannot inspect the socket %s after bind: no stat data", s.path)
	}
	if fi.Mode().Type() != fs.ModeSocket || int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("the socket file %s was replaced after bind (now %v, owner uid %d): refusing to start",
			s.path, fi.Mode(), st.Uid)
	}
	if fi.Mode().Perm() != socketMode {
		// Ours, but unusable: a umask that takes the owner's permissions away.
		_ = os.Remove(s.path)
		return fmt.Errorf("the socket %s was created with mode %#o, not %#o (does the umask remove the owner's permissions?)",
			s.path, uint32(fi.Mode().Perm()), socketMode)
	}
	s.dev, s.ino = uint64(st.Dev), uint64(st.Ino)
	return nil
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
