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

// TakeOverStdin keeps the real stdin for the protocol and points file descriptor 0 at the null
// device: it duplicates descriptor 0 into a new descriptor (returned, for the control channel),
// then opens /dev/null onto descriptor 0. After it, os.Stdin reads end of file, and a child
// process that inherits descriptor 0 (cmd.Stdin = os.Stdin) cannot take the parent's messages: a
// tool that polls its stdin for keyboard commands would otherwise read them (PROTOCOL.md 1.5).
// Serve calls it; call it yourself only when you compose your own worker.
func TakeOverStdin() (*os.File, error) {
	fd, err := dupCloexec(0)
	if err != nil {
		return nil, fmt.Errorf("aspectipc: cannot duplicate stdin: %w", err)
	}
	null, err := syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("aspectipc: cannot open %s for stdin: %w", os.DevNull, err)
	}
	err = dup2(null, 0) // the copy on descriptor 0 is inherited by child processes, as stdin should be
	syscall.Close(null)
	if err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("aspectipc: cannot point stdin at %s: %w", os.DevNull, err)
	}
	return os.NewFile(uintptr(fd), "protocol-stdin"), nil
}

// dupCloexec duplicates fd to a descriptor above 2 with close-on-exec set, so that child
// processes do not inherit the protocol's copy.
func dupCloexec(fd int) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 3)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}
