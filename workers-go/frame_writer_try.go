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
	if fw.trier != nil {
		rest, tried, err := fw.trier.tryWriteVectors(frame)
		if tried && (err != nil || allWritten(rest)) {
			// The frame is out (or the write failed). A batch left to write after it holds
			// only frames hold kept back, whose writes returned long ago: writing it may wait,
			// so a goroutine does.
			if b := fw.passOn(err); b != nil {
				fw.detached.Add(1)
				go fw.writeLeft(b)
			}
			return err
		}
		frame = rest
	}
	fw.detached.Add(1)
	flushed := make(chan error, 1)
	go func() { err := fw.flush(frame); fw.handOff(err); flushed <- err }()
	select {
	case err := <-flushed:
		return err
	case <-cancel:
		go func() { <-flushed; owner.Release() }()
		return errWriteStarted
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
