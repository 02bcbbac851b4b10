//go:build unix && !linux

package aspectipc

import (
	"net"
	"sync"
	"syscall"
)

// umaskMu serializes the process-wide umask change around bind.
var umaskMu sync.Mutex

// listenUnix0600 listens on a new Unix domain socket at path whose file is created with mode
// 0600. The BSDs and macOS ignore a socket's own mode when bind creates its file, so the umask
// is narrowed around bind instead: the file is 0600 from the instant it exists, with no chmod by
// path. (Other goroutines creating files at that instant get the narrow umask too.)
func listenUnix0600(path string) (*net.UnixListener, error) {
	umaskMu.Lock()
	defer umaskMu.Unlock()
	old := syscall.Umask(0o777 &^ socketMode)
	defer syscall.Umask(old)
	return net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
}
