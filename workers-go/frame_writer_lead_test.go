//go:build unix

package aspectipc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"sync/atomic"
	"testing"
)

// A sender with a cancel channel that finds a write in progress queues its frame, and may then be
// handed the batch queued meanwhile to write (its lead): it writes it as a sender that found no
// write in progress does (frame_writer_try.go), what the socket takes at once in place and the
// rest through a goroutine it can walk away from, for a peer that stops reading mid-batch would
// hold it past its cancel otherwise.

// releaseCount is a frame owner that counts its releases.
type releaseCount struct{ n atomic.Int64 }

func (r *releaseCount) Release() { r.n.Add(1) }

// The second of two 4 MiB frames is queued behind the first, with a cancel channel; the peer reads
// the first and one byte of the second, then stops. The second's sender, in charge of writing its
// batch, walks away when cancel closes; its frame still arrives whole and once, its owner is
// released after that, and the next frame follows it.
func TestSenderHandedItsBatchWalksAwayWhenCancelled(t *testing.T) {
	t.Parallel()
	conn, peer := blockedPair(t)
	fw := newFrameWriter(conn)
	first := bytes.Repeat([]byte("a"), 4<<20) // far more than a socket buffer
	second := bytes.Repeat([]byte("b"), 4<<20)
	wrote := make(chan error, 1)
	go func() { wrote <- fw.write([][]byte{first}) }()
	waitFor(t, "the first write to be in progress", func() bool {
		fw.mu.Lock()
		defer fw.mu.Unlock()
		return fw.writing
	})
	cancel := make(chan struct{})
	owner := &releaseCount{}
	sent := make(chan error, 1)
	go func() { sent <- fw.writeOr([][]byte{second}, cancel, owner) }()
	waitQueued(t, fw, 1)

	got := make([]byte, len(first)+1)
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:len(first)], first) || got[len(first)] != 'b' {
		t.Fatal("the peer did not read the first frame, then the second's first byte")
	}
	if err := within(t, wrote, "the first write"); err != nil {
		t.Fatal(err)
	}
	// The second's sender is writing its batch (a byte of it arrived) to a peer that stopped reading.
	close(cancel)
	if err := within(t, sent, "the sender handed its batch, after cancel"); !errors.Is(err, errWriteStarted) {
		t.Fatalf("writeOr: %v, want errWriteStarted", err)
	}
	if n := owner.n.Load(); n != 0 {
		t.Fatalf("the frame's owner was released %d times before its frame was written", n)
	}

	after := make(chan error, 1)
	go func() { after <- fw.write([][]byte{[]byte("after")}) }()
	got = make([]byte, len(second)-1+len("after"))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:len(second)-1], second[1:]) || string(got[len(second)-1:]) != "after" {
		t.Fatal("the rest of the second frame, then the next one, did not arrive intact")
	}
	if err := within(t, after, "the next write"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the frame's owner to be released", func() bool { return owner.n.Load() == 1 })
}

// A Notify with a ctx queued behind a large Notify, to a peer that reads the first message and
// then stops: once its ctx ends, it returns cancelled though it was in charge of writing its
// batch; the peer then receives its message intact, then what followed.
func TestNotifyHandedItsBatchReturnsWhenItsCtxEnds(t *testing.T) {
	t.Parallel()
	ch, conn := blockedChannel(t, nil, true)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	first := make(chan error, 1)
	go func() { first <- ch.Notify(context.Background(), "first", []any{big}) }()
	waitFor(t, "the first notification's write to be in progress", func() bool {
		ch.writer.mu.Lock()
		defer ch.writer.mu.Unlock()
		return ch.writer.writing
	})
	ctx, cancel := context.WithCancel(context.Background())
	sent := make(chan error, 1)
	go func() { sent <- ch.Notify(ctx, "second", []any{big}) }()
	waitFor(t, "the second notification to be queued", func() bool {
		ch.writer.mu.Lock()
		defer ch.writer.mu.Unlock()
		return ch.writer.queued > 0
	})

	var header [4]byte
	if _, err := io.ReadFull(conn, header[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, conn, int64(binary.BigEndian.Uint32(header[:]))); err != nil {
		t.Fatal(err)
	}
	if err := within(t, first, "the first notification"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second's batch to go to a goroutine", func() bool { return ch.writer.detached.Load() == 1 })
	cancel()
	err := within(t, sent, "Notify after its ctx ended")
	var rpcErr *Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != CodeRequestCancelled || !errors.Is(err, context.Canceled) {
		t.Fatalf("Notify whose ctx ended while it wrote its batch: %v", err)
	}
	after := make(chan error, 1)
	go func() { after <- ch.Notify(context.Background(), "after", nil) }()
	peer := wrapStreamPeer(t, conn)
	m := peer.next()
	params, _ := m["params"].([]any)
	if m["method"] != "second" || len(params) != 1 || !bytes.Equal(asBytes(params[0]), big) {
		t.Fatalf("the next message is not the second notification intact: method %v", m["method"])
	}
	if m := peer.next(); m["method"] != "after" {
		t.Fatalf("want the next notification after it, got %v", m)
	}
	if err := within(t, after, "the next notification"); err != nil {
		t.Fatal(err)
	}
}
