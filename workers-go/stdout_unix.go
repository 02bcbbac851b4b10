//go:build unix

package aspectipc

import (
	"fmt"
	"os"
	"syscall"
)

// TakeOverStdout keeps the real stdout for the protocol and sends the program's own stdout
// writes to stderr: it duplicates file descriptor 1 into a new descriptor (returned, for the
// control channel), then points descriptor 1 at stderr. After it, fmt.Println, os.Stdout and
// child processes that inherit descriptor 1 write to stderr and cannot corrupt the control
// channel. Serve calls it; call it yourself only when you compose your own worker.
func TakeOverStdout() (*os.File, error) {
	fd, err := dupCloexec(1)
	if err != nil {
		return nil, fmt.Errorf("aspectipc: cannot duplicate stdout: %w", err)
	}
	if err := dup2(2, 1); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("aspectipc: cannot point stdout at stderr: %w", err)
	}
	return os.NewFile(uintptr(fd), "protocol-stdout"), nil
}

// dupCloexec duplicates fd to a descriptor above 2 with close-on-exec set, so that child
// processes do not inherit the protocol's stdout.
func dupCloexec(fd int) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 3)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}
