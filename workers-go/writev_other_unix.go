//go:build unix && !linux

package aspectipc

import "syscall"

// writev writes the first non-empty slice of bufs with write(2) on fd and returns how many bytes
// it took: the callers loop until every slice is written.
func writev(fd int, bufs [][]byte) (int, error) {
	for _, b := range bufs {
		if len(b) > 0 {
			return syscall.Write(fd, b)
		}
	}
	return 0, nil
}
