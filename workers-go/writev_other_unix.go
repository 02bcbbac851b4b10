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

// sendNow is writev that does not wait: the first non-empty slice of bufs with sendmsg(2) and
// MSG_DONTWAIT, which takes what the socket has room for and fails with EAGAIN when it has none.
// The flag is the call's, not the descriptor's, so a read parked on fd stays a blocking read.
func sendNow(fd int, bufs [][]byte) (int, error) {
	for _, b := range bufs {
		if len(b) > 0 {
			return syscall.SendmsgN(fd, b, nil, nil, syscall.MSG_DONTWAIT)
		}
	}
	return 0, nil
}
