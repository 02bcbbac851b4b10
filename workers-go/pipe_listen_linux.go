//go:build linux

package aspectipc

import (
	"math"
	"net"
	"os"
	"syscall"
)

// listenUnix0600 listens on a new Unix domain socket at path whose file is created with mode
// 0600. On Linux, bind creates the socket file with the socket inode's mode less the umask, and
// fchmod on the unbound socket sets that mode: the file is 0600 from the instant it exists, with
// no chmod by path and no change of the process-wide umask (which other goroutines creating
// files at the same moment would get).
func listenUnix0600(path string) (*net.UnixListener, error) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close() // net.FileListener works on a duplicate
	if err := syscall.Fchmod(fd, socketMode); err != nil {
		return nil, os.NewSyscallError("fchmod", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		return nil, os.NewSyscallError("bind", err)
	}
	// The kernel caps the backlog at net.core.somaxconn, the value net.Listen uses.
	if err := syscall.Listen(fd, math.MaxUint16); err != nil {
		return nil, os.NewSyscallError("listen", err)
	}
	l, err := net.FileListener(f)
	if err != nil {
		return nil, err
	}
	return l.(*net.UnixListener), nil
}
