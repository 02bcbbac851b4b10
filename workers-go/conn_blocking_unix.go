//go:build unix

package aspectipc

import (
	"io"
	"net"
	"os"
	"sync"
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
// The socket also leaves the poller's epoll set: it is read and written through a descriptor of
// its own, and the net.Conn is closed. A socket left in the set, even one nobody waits on there,
// wakes the poller's thread at each message in and each write (the set is edge-triggered, for
// reading and writing), and the worker's control channel keeps a thread waiting in the poller.
// That was two to three wake-ups of a second thread per request. Measured, one echo at a time
// from a bare asyncio client, interleaved with a plain Go echo loop: 2.35x the loop's round trip
// p50 with the socket left in the set, 1.04x with it out (56 against 29 µs).
//
// A thread parked in the kernel runs nothing else meanwhile, so Channel.Run yields before a read
// when it has just handed a message to another goroutine (a handler, a stream's producer given
// credit): that goroutine runs now instead of waiting until the runtime notices the parked thread
// (without the yield, a request answered on a handler goroutine took 1.3-2.9x as long).
//
// The price is one thread parked per authenticated connection, and a worker has at most one.
// Connections that have not passed $/hello stay on the poller, so a client that opens many
// cannot make the worker park threads.

// blockingConn is a data connection that, once authenticated, is read and written through a
// blocking descriptor of its own (fd). Its Close shuts the socket down first, which wakes
// whatever is parked on it, and closes fd once no read or write is using it any more, so that
// the number is never reused under one.
type blockingConn struct {
	// conn is used until block, and closed once the reads and writes begun on it have ended. Not
	// embedded: net would find its writev and write to it directly.
	conn *net.UnixConn

	mu         sync.Mutex
	fd         int  // the blocking descriptor; -1 before block (or if it was refused) and once closed
	users      int  // reads and writes in progress, on fd or on conn
	connClosed bool // conn was closed after block
	closing    bool
}

// newDataConn wraps an accepted data connection; any other net.Conn is returned as it is.
func newDataConn(conn net.Conn) Transport {
	if unix, ok := conn.(*net.UnixConn); ok {
		return &blockingConn{conn: unix, fd: -1}
	}
	return conn
}

// block moves the connection to a blocking descriptor of its own, out of the poller: from now
// on a read or write parks its thread in the kernel until the peer sends or reads, or the
// connection is shut down. A write begun before (another goroutine may already hold the channel)
// ends on the old descriptor, which is closed after it. Refused, the connection stays on the
// poller (slower, not wrong).
func (c *blockingConn) block() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.fd >= 0 {
		return
	}
	withFD(c.conn, func(fd int) {
		syscall.ForkLock.RLock() // a process started meanwhile must not inherit the copy
		own, err := syscall.Dup(fd)
		if err == nil {
			syscall.CloseOnExec(own)
		}
		syscall.ForkLock.RUnlock()
		if err != nil {
			return
		}
		if err := syscall.SetNonblock(own, false); err != nil { // the flag is the socket's: both
			_ = syscall.Close(own)
			return
		}
		c.fd = own
	})
	c.settle()
}

// acquire counts a read or write as in progress until release and returns the descriptor it
// uses: fd, or -1 for conn (before block). It fails once the connection is closed.
func (c *blockingConn) acquire() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return -1, net.ErrClosed
	}
	c.users++
	return c.fd, nil
}

func (c *blockingConn) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.users--
	c.settle()
}

// settle closes what nothing uses any more: conn once the connection is blocked (which takes
// the socket out of the epoll set; fd keeps it open), fd once it is closing.
func (c *blockingConn) settle() {
	if c.users > 0 || c.fd < 0 {
		return
	}
	if !c.connClosed {
		_ = c.conn.Close()
		c.connClosed = true
	}
	if c.closing {
		_ = syscall.Close(c.fd)
		c.fd = -1
	}
}

// Read reads from the socket; io.EOF once the peer has closed it or it was shut down.
func (c *blockingConn) Read(p []byte) (int, error) {
	fd, err := c.acquire()
	if err != nil {
		return 0, opError("read", err)
	}
	defer c.release()
	if fd < 0 {
		return c.conn.Read(p)
	}
	for {
		n, err := syscall.Read(fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, opError("read", os.NewSyscallError("read", err))
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// Write writes all of p, unless the socket fails (the peer has gone, or it was shut down).
func (c *blockingConn) Write(p []byte) (int, error) {
	return c.writeVectors([][]byte{p})
}

// writeVectors writes every slice of bufs, in order: with writev, in as few system calls as
// the socket takes them. It returns the bytes written (all of them unless it fails), and may
// modify bufs.
func (c *blockingConn) writeVectors(bufs [][]byte) (int, error) {
	fd, err := c.acquire()
	if err != nil {
		return 0, opError("write", err)
	}
	defer c.release()
	if fd < 0 {
		vec := net.Buffers(bufs)
		n, err := vec.WriteTo(c.conn)
		return int(n), err
	}
	written := 0
	for len(bufs) > 0 {
		n, err := writev(fd, bufs)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return written, opError("write", os.NewSyscallError("writev", err))
		}
		written += n
		bufs = advanceVectors(bufs, n)
	}
	return written, nil
}

// tryWriteVectors writes what the socket takes of bufs without waiting for room in it (sendNow),
// and returns what it did not take: bufs's tail, its first slice possibly cut (bufs is modified),
// empty when it took everything. tried is false when the connection cannot write without waiting
// (it is still on the poller): nothing was written then. An error is the socket's failure (the
// peer has gone, or it was shut down), never a lack of room.
func (c *blockingConn) tryWriteVectors(bufs [][]byte) (rest [][]byte, tried bool, err error) {
	fd, err := c.acquire()
	if err != nil {
		return bufs, true, opError("write", err)
	}
	defer c.release()
	if fd < 0 {
		return bufs, false, nil
	}
	for len(bufs) > 0 {
		n, err := sendNow(fd, bufs)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
			return bufs, true, nil
		case err != nil:
			return bufs, true, opError("write", os.NewSyscallError("sendmsg", err))
		}
		bufs = advanceVectors(bufs, n)
		if n == 0 && len(bufs) > 0 { // took nothing without saying why: leave it to a write that waits
			return bufs, true, nil
		}
	}
	return bufs, true, nil
}

// advanceVectors drops the first n bytes of bufs, which were written, and the empty slices
// that follow them. A blocking socket takes a whole writev unless a signal interrupts it.
func advanceVectors(bufs [][]byte, n int) [][]byte {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if n > 0 {
		bufs[0] = bufs[0][n:]
	}
	return bufs
}

// Close shuts the socket down, which wakes whatever is parked on it, then closes it (at once, or
// as the last read or write on it returns).
func (c *blockingConn) Close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closing = true
	fd := c.fd
	if fd < 0 {
		c.mu.Unlock()
		withFD(c.conn, func(fd int) { _ = syscall.Shutdown(fd, syscall.SHUT_RDWR) })
		return c.conn.Close()
	}
	_ = syscall.Shutdown(fd, syscall.SHUT_RDWR)
	c.settle()
	c.mu.Unlock()
	return nil
}

func opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "unix", Err: err}
}

// blocker is a transport that can be switched to reads and writes that park in the kernel.
type blocker interface{ block() }

var _ blocker = (*blockingConn)(nil)
