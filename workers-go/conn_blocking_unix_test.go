//go:build unix

package aspectipc

import (
	"bytes"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// blockedPair returns a blocking data connection (after block) and its peer, over a real Unix
// socket.
func blockedPair(t *testing.T) (*blockingConn, *net.UnixConn) {
	t.Helper()
	c, peer := connPair(t)
	c.block()
	if c.fd < 0 {
		t.Fatal("block left the connection on the poller")
	}
	return c, peer
}

// connPair returns an accepted data connection, not blocked yet, and its peer.
func connPair(t *testing.T) (*blockingConn, *net.UnixConn) {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(shortTempDir(t), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return newDataConn(accepted).(*blockingConn), peer.(*net.UnixConn)
}

// within waits for done, failing the test after a bound meant only to stop a hang.
func within[T any](t *testing.T, done <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-done:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still waiting after 10 s", what)
		panic("unreachable")
	}
}

// expectPeerEOF reads what the peer has left and expects the end of the stream: the socket was
// really closed, not only shut down.
func expectPeerEOF(t *testing.T, peer *net.UnixConn) {
	t.Helper()
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, peer); err != nil {
		t.Fatalf("the peer's read: %v, not the end of the stream", err)
	}
}

func TestBlockingConnReadsAndWrites(t *testing.T) {
	t.Parallel()
	c, peer := blockedPair(t)
	if _, err := peer.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	big := make([]byte, 8<<20) // far more than the socket buffers: written in several calls
	written := make(chan error, 1)
	go func() { _, err := c.Write(big); written <- err }()
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.ReadFull(peer, make([]byte, len(big))); err != nil || n != len(big) {
		t.Fatalf("the peer read %d bytes: %v", n, err)
	}
	if err := within(t, written, "the write"); err != nil {
		t.Fatal(err)
	}
	peer.Close()
	if n, err := c.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("after the peer closed: %d, %v; want io.EOF", n, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBlockingConnCloseWakesAParkedRead(t *testing.T) {
	t.Parallel()
	c, peer := blockedPair(t)
	read := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 16)); read <- err }()
	time.Sleep(20 * time.Millisecond) // most likely parked in read(2) by now; either way it ends
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := within(t, read, "the parked read after Close"); err != io.EOF {
		t.Fatalf("the parked read ended with %v, want io.EOF", err)
	}
	expectPeerEOF(t, peer)
	if _, err := c.Read(make([]byte, 16)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a read after Close: %v, want net.ErrClosed", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a write after Close: %v, want net.ErrClosed", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a second Close: %v, want net.ErrClosed", err)
	}
}

func TestBlockingConnCloseWakesAParkedWrite(t *testing.T) {
	t.Parallel()
	c, peer := blockedPair(t)
	type result struct {
		n   int
		err error
	}
	wrote := make(chan result, 1)
	big := make([]byte, 64<<20) // the peer reads nothing: the write parks once the buffers fill
	go func() { n, err := c.Write(big); wrote <- result{n, err} }()
	time.Sleep(50 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	r := within(t, wrote, "the parked write after Close")
	if r.err == nil || r.n >= len(big) {
		t.Fatalf("the parked write ended with %d bytes written, %v; want an error, part written", r.n, r.err)
	}
	var op *net.OpError
	if !errors.As(r.err, &op) || op.Op != "write" {
		t.Fatalf("the write's error %v is not a *net.OpError for write", r.err)
	}
	expectPeerEOF(t, peer)
}

// A write begun before block (another goroutine may hold the channel as soon as $/hello has
// passed) is not cut short by it: it ends on the descriptor it began on, which is closed after.
func TestBlockingConnWriteBegunBeforeBlockEnds(t *testing.T) {
	t.Parallel()
	c, peer := connPair(t)
	big := make([]byte, 32<<20) // more than the socket buffers: still being written at block
	for i := range big {
		big[i] = byte(i * 7)
	}
	written := make(chan error, 1)
	go func() { _, err := c.Write(big); written <- err }()
	time.Sleep(50 * time.Millisecond)
	c.block()
	if c.fd < 0 {
		t.Fatal("block left the connection on the poller")
	}
	got := make([]byte, len(big))
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatalf("the peer's read: %v", err)
	}
	if err := within(t, written, "the write begun before block"); err != nil {
		t.Fatalf("the write begun before block failed: %v", err)
	}
	if !bytes.Equal(got, big) {
		t.Fatal("the peer read other bytes than were written")
	}
	c.mu.Lock()
	closed := c.connClosed
	c.mu.Unlock()
	if !closed {
		t.Fatal("the old descriptor is still open after the write on it ended")
	}
	if _, err := c.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(peer, got[:5]); err != nil || string(got[:5]) != "after" {
		t.Fatalf("the write after block: %q, %v", got[:5], err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	expectPeerEOF(t, peer)
}

// writeVectors writes every slice in order: more slices than one writev takes, empty ones among
// them, and a large one the socket takes in several pieces.
func TestBlockingConnWritesVectors(t *testing.T) {
	t.Parallel()
	c, peer := blockedPair(t)
	var bufs [][]byte
	var want []byte
	for i := range 3000 {
		b := []byte{byte(i), byte(i >> 8)}
		if i%7 == 0 {
			b = nil
		}
		if i == 1500 {
			b = bytes.Repeat([]byte("large"), 2<<20) // 10 MiB
		}
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	type result struct {
		n   int
		err error
	}
	wrote := make(chan result, 1)
	go func() { n, err := c.writeVectors(bufs); wrote <- result{n, err} }()
	got := make([]byte, len(want))
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatalf("the peer's read: %v", err)
	}
	if r := within(t, wrote, "writeVectors"); r.err != nil || r.n != len(want) {
		t.Fatalf("writeVectors: %d bytes of %d, %v", r.n, len(want), r.err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the peer read other bytes than the slices, in order")
	}
}

// A writev cut short (by a signal) goes on from the byte where it stopped.
func TestAdvanceVectorsGoesOnWhereAWriteStopped(t *testing.T) {
	t.Parallel()
	vectors := func() [][]byte { return [][]byte{[]byte("ab"), nil, []byte("cde"), {}, []byte("f")} }
	for n, want := range []string{"abcdef", "bcdef", "cdef", "def", "ef", "f", ""} {
		got := advanceVectors(vectors(), n)
		if string(bytes.Join(got, nil)) != want {
			t.Errorf("after %d bytes: %q, want %q", n, bytes.Join(got, nil), want)
		}
		if len(got) > 0 && len(got[0]) == 0 {
			t.Errorf("after %d bytes: an empty slice first (%q)", n, got)
		}
	}
}
