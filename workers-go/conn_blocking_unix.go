//go:build unix

package aspectipc

import (
	"net"
	"syscall"
)

// An authenticated data connection is read and written with system calls that park the thread
// in the kernel, not through Go's network poller. A small request answered inline is a few
// microseconds of work between two waits for the parent; with the poller each wait ends with the
// poller thread seeing the socket ready and a thread being handed the goroutine, which on a small
// machine costs more than the work, while a parked read(2) is woken by the kernel directly.
// Measured on the bench's machine (2 vCPUs), one echo at a time from an asyncio parent: a plain
// Go echo loop answered in 59 µs through the poller and 21 µs with blocking reads; the test
// worker, through aspect-ipc, in 75-91 µs before and 63-71 µs after, its user CPU per request
// down by a third (14 to 9 µs).
//
// A thread parked in the kernel runs nothing else meanwhile, so Channel.Run yields before a read
// when it has just handed a message to another goroutine (a handler, a stream's producer given
// credit): that goroutine runs now instead of waiting until the runtime notices the parked thread
// (without the yield, a request answered on a handler goroutine took 1.3-2.9x as long).
//
// The price is one thread parked per authenticated connection, and a worker has at most one.
// Connections that have not passed $/hello stay on the poller, so a client that opens many
// cannot make the worker park threads.

// blockingConn is a data connection whose socket is switched to blocking mode once it is
// authenticated. Its Close shuts the socket down first: a read or write parked in the kernel is
// woken only by that, and net's Close waits for it to return.
type blockingConn struct {
	*net.UnixConn
}

// newDataConn wraps an accepted data connection; any other net.Conn is returned as it is.
func newDataConn(conn net.Conn) net.Conn {
	if unix, ok := conn.(*net.UnixConn); ok {
		return &blockingConn{unix}
	}
	return conn
}

// block puts the socket in blocking mode: from now on a read or write parks its thread in the
// kernel until the peer sends or reads, or the connection is shut down. Refused, it stays on
// the poller (slower, not wrong): reads and writes work in either mode.
func (c *blockingConn) block() {
	withFD(c.UnixConn, func(fd int) { _ = syscall.SetNonblock(fd, false) })
}

// Close shuts the socket down, which wakes whatever is parked on it, then closes it.
func (c *blockingConn) Close() error {
	withFD(c.UnixConn, func(fd int) { _ = syscall.Shutdown(fd, syscall.SHUT_RDWR) })
	return c.UnixConn.Close()
}

// blocker is a transport that can be switched to reads and writes that park in the kernel.
type blocker interface{ block() }

var _ blocker = (*blockingConn)(nil)
