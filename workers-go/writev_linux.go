package aspectipc

import (
	"runtime"
	"syscall"
	"unsafe"
)

// maxIovecs is how many slices one writev takes here (Linux's IOV_MAX).
const maxIovecs = 1024

// writev writes the head of bufs (empty slices skipped) with one writev(2) on fd, a blocking
// descriptor, and returns how many bytes it took. The standard library has no writev for a
// descriptor of one's own, and a frame's head and its spliced payload written apart cost a
// system call more and reach the peer in two pieces (a Python parent then kept one payload more
// alive in a loop of 16 MiB echoes: 3 payloads at its peak, against 2).
func writev(fd int, bufs [][]byte) (int, error) {
	var iovecs [16]syscall.Iovec
	iov := appendIovecs(iovecs[:0], bufs)
	if len(iov) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.Syscall(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	runtime.KeepAlive(bufs)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// sendNow is writev that does not wait: one sendmsg(2) with MSG_DONTWAIT, which takes what the
// socket has room for and fails with EAGAIN when it has none. The flag is the call's, not the
// descriptor's, so a read parked on fd meanwhile stays a blocking read.
func sendNow(fd int, bufs [][]byte) (int, error) {
	var iovecs [16]syscall.Iovec
	iov := appendIovecs(iovecs[:0], bufs)
	if len(iov) == 0 {
		return 0, nil
	}
	msg := syscall.Msghdr{Iov: &iov[0]}
	setLength(&msg.Iovlen, len(iov))
	n, _, errno := syscall.Syscall(syscall.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), syscall.MSG_DONTWAIT)
	runtime.KeepAlive(bufs)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// appendIovecs appends the non-empty slices at the head of bufs to iov, at most maxIovecs.
func appendIovecs(iov []syscall.Iovec, bufs [][]byte) []syscall.Iovec {
	for _, b := range bufs {
		if len(iov) == maxIovecs {
			break
		}
		if len(b) > 0 {
			v := syscall.Iovec{Base: &b[0]}
			v.SetLen(len(b))
			iov = append(iov, v)
		}
	}
	return iov
}

// setLength sets a length field whose width depends on the architecture (Msghdr.Iovlen).
func setLength[T ~uint32 | ~uint64](field *T, n int) { *field = T(n) }
