package aspectipc

// vectorTrier is a writer that can write without waiting for room (a blocked data connection):
// tryWriteVectors writes what the socket takes of bufs at once and returns the rest, empty when it
// took everything; tried is false when it cannot (nothing was written); err is a failed write.
type vectorTrier interface {
	tryWriteVectors(bufs [][]byte) (rest [][]byte, tried bool, err error)
}

// flushOr writes frame for a sender that found no write in progress (it is now in charge of
// writing) and gives up waiting when cancel closes: the write is then finished by a goroutine,
// which releases owner once it is (errWriteStarted). A peer that stops reading blocks a write for
// good, so the caller must not wait in it past cancel.
//
// A frame the socket has room for is written here, without waiting and without a goroutine, and
// nearly every frame fits: a goroutine and a channel per write cost a stream of 64-byte items a
// sixth of the worker's CPU per item (8.9 against 7.4 µs, medians of 7 runs of 8 interleaved
// rounds on a shared 2-vCPU machine). Only what the socket did not take goes to the goroutine;
// nothing is written twice, and the charge of writing stays with this write until the whole frame
// is out, so frames still never interleave. A writer that cannot try (a pipe, a connection on the
// poller) writes through the goroutine from the start.
func (fw *frameWriter) flushOr(frame [][]byte, cancel <-chan struct{}, owner releaser) error {
	rest, out, err := fw.tryFlush(frame)
	if out {
		fw.handOffBehind(err)
		return err
	}
	fw.detached.Add(1)
	flushed := make(chan error, 1)
	go func() { err := fw.flush(rest); fw.handOff(err); flushed <- err }()
	select {
	case err := <-flushed:
		return err
	case <-cancel:
		go func() { <-flushed; owner.Release() }()
		return errWriteStarted
	}
}

// writeBatchOr is writeBatch for a waiter with a cancel channel that was handed the charge of
// writing b (its lead), which holds its own frame and those queued with it: the same peer that
// stops reading would hold it there past cancel, so it writes as flushOr does. What the socket
// takes at once is written here; the rest is finished by a goroutine, which closes b.done and
// passes the charge on once it is, and releases owner when the caller walked away meanwhile
// (errWriteStarted). The other waiters of b wait for b.done as before.
func (fw *frameWriter) writeBatchOr(b *writeBatch, cancel <-chan struct{}, owner releaser) error {
	if cancel == nil {
		return fw.writeBatch(b)
	}
	rest, out, err := fw.tryFlush(b.bufs)
	if out {
		b.err = err
		b.bufs = nil
		close(b.done)
		fw.handOffBehind(err)
		return err
	}
	b.bufs = rest
	fw.detached.Add(1)
	go func() { _ = fw.writeBatch(b) }()
	select {
	case <-b.done:
		return b.err
	case <-cancel:
		go func() { <-b.done; owner.Release() }()
		return errWriteStarted
	}
}

// tryFlush writes what the socket takes of bufs without waiting, for the sender in charge of
// writing. out reports that nothing is left to write: all of bufs went out, or the write failed
// (err). Otherwise rest is what is left (all of bufs when the writer cannot try), for a write that
// may wait.
func (fw *frameWriter) tryFlush(bufs [][]byte) (rest [][]byte, out bool, err error) {
	if fw.trier == nil {
		return bufs, false, nil
	}
	rest, tried, err := fw.trier.tryWriteVectors(bufs)
	if tried && (err != nil || allWritten(rest)) {
		return nil, true, err
	}
	return rest, false, nil
}

// handOffBehind is handOff for a sender that has written without waiting and must not wait now:
// a batch left to write after its write holds only frames hold kept back, whose writes returned
// long ago, and writing it may wait, so a goroutine does.
func (fw *frameWriter) handOffBehind(err error) {
	if b := fw.passOn(err); b != nil {
		fw.detached.Add(1)
		go fw.writeLeft(b)
	}
}

// allWritten reports whether nothing is left of a frame's slices (the empty ones write nothing).
func allWritten(rest [][]byte) bool {
	for _, b := range rest {
		if len(b) > 0 {
			return false
		}
	}
	return true
}
