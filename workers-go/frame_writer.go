package aspectipc

import (
	"errors"
	"io"
	"net"
	"sync"
)

// frameWriter serializes frames onto a transport with group commit. A sender that finds no write
// in progress writes its frame itself; frames sent while a write is in progress are queued into
// one batch, which the first of their senders to be woken writes in one go (one writev on a
// socket) once the write in progress ends. Every sender returns once its own frame is written,
// with that write's outcome, so:
//   - frames never interleave, and go out in the order their senders queued them;
//   - a frame is on the wire when write returns (what closes after a response relies on this);
//   - what is queued is bounded by the senders waiting: a slow reader blocks the senders instead
//     of letting memory grow;
//   - frames that are ready together cost one system call, not one each.
//
// A failed write leaves the stream unusable (a frame may be half written), so its error is
// returned to the frames of that batch and to every later write.
type frameWriter struct {
	w        io.Writer
	vectored bool         // w writes a net.Buffers with writev
	vectors  vectorWriter // or else w writes slices in one go itself, or nil
	// Used by the sender in charge of writing only: the slices being written (kept here so that
	// writing allocates nothing), and a buffer to gather small frames for a plain io.Writer.
	vec     net.Buffers
	scratch []byte

	mu      sync.Mutex
	writing bool        // a sender is in charge of writing
	queue   *writeBatch // frames waiting for the write in progress to end
	err     error       // sticky: a write failed
	// held is frames the read loop held back (hold), copied end to end: they go out first in the
	// next write, whoever makes it, so that frames still leave in the order their writes returned.
	held []byte
}

// writeBatch is the frames queued during one write.
type writeBatch struct {
	bufs    net.Buffers
	live    int           // frames in bufs that were not withdrawn
	waiters int           // senders waiting for it: held frames have none, so a batch of them alone has 0
	lead    chan struct{} // receives once: the waiter that gets it writes the batch
	done    chan struct{} // closed once the batch is written, or has failed
	err     error
}

// holdLimit bounds the bytes held back by hold; a frame that would go over it is written at once,
// after what is held.
const holdLimit = 64 << 10

// holdFrameLimit is the largest frame hold copies: a larger one gains little from sharing a
// system call, and is written at once.
const holdFrameLimit = 8 << 10

// errWithdrawn is returned by writeOr when the frame was taken back out of the queue, unsent.
var errWithdrawn = errors.New("withdrawn before it was written")

// errWriteStarted is returned by writeOr when cancel ended the wait while the frame was being
// written: it will be written whole, by a goroutine that releases it once it is.
var errWriteStarted = errors.New("still being written")

// gatherLimit bounds the copies made to gather frames into one write on a plain io.Writer;
// larger frames are written as they are.
const gatherLimit = 64 << 10

func newFrameWriter(w io.Writer) *frameWriter {
	vectored := false
	switch w.(type) {
	case *net.UnixConn, *net.TCPConn:
		vectored = true
	}
	vectors, _ := w.(vectorWriter)
	return &frameWriter{w: w, vectored: vectored, vectors: vectors}
}

// vectorWriter is a writer with its own writev (a blocking data connection).
type vectorWriter interface {
	writeVectors(bufs [][]byte) (int, error)
}

// write writes one frame given as consecutive slices, which must stay untouched until it returns.
func (fw *frameWriter) write(frame [][]byte) error { return fw.writeOr(frame, nil, nil) }

// releaser frees the buffers of a frame (an *outframe.Frame: an interface rather than a method
// value, which would be allocated on every write).
type releaser interface{ Release() }

// writeOr is write that gives up when cancel closes first: a frame still queued is taken back out
// (errWithdrawn, nothing of it is written); a frame being written is written whole by a goroutine
// (errWriteStarted) which then releases owner, for the caller no longer owns the frame's buffers.
// Otherwise releasing is left to the caller. A nil cancel waits for the write, whatever it takes.
func (fw *frameWriter) writeOr(frame [][]byte, cancel <-chan struct{}, owner releaser) error {
	fw.mu.Lock()
	if fw.err != nil {
		err := fw.err
		fw.mu.Unlock()
		return err
	}
	held := fw.held
	fw.held = nil
	if held == nil && len(frame) == 0 { // release with nothing held
		fw.mu.Unlock()
		return nil
	}
	if !fw.writing {
		fw.writing = true
		fw.mu.Unlock()
		if held != nil {
			frame = append([][]byte{held}, frame...)
		}
		if cancel == nil {
			err := fw.flush(frame)
			fw.handOff(err)
			return err
		}
		// A peer that stops reading blocks the write for good: the caller waits for it only
		// until cancel, and a goroutine finishes it then.
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
	b := fw.queue
	if b == nil {
		b = &writeBatch{lead: make(chan struct{}, 1), done: make(chan struct{})}
		fw.queue = b
	}
	if held != nil { // a frame of its own, never withdrawn: its writes have returned
		b.bufs = append(b.bufs, held)
		b.live++
	}
	start := len(b.bufs)
	if len(frame) > 0 {
		b.bufs = append(b.bufs, frame...)
		b.live++
	}
	b.waiters++
	fw.mu.Unlock()
	select {
	case <-b.done:
		return b.err
	case <-b.lead:
		return fw.writeBatch(b)
	case <-cancel:
		fw.mu.Lock()
		if fw.queue == b { // nobody writes the batch yet: take the frame back out
			clear(b.bufs[start : start+len(frame)]) // empty slices write nothing
			b.live--
			b.waiters--
			fw.mu.Unlock()
			return errWithdrawn
		}
		fw.mu.Unlock()
		select {
		case <-b.done:
			return b.err
		case <-b.lead:
			go func() { _ = fw.writeBatch(b); owner.Release() }()
			return errWriteStarted
		}
	}
}

// hold is write for the read loop while it works through what one read brought: a small frame is
// copied and held back, to go out with the next write (release at the end of the read's frames, or
// any sender's write before that), so that the responses to a read's requests cost one system
// call, not one each. It returns nil once the frame is held; a write failing later fails the
// writer, and with it every later write, as any write does. A frame that would take what is held
// over holdLimit is written at once, after it.
func (fw *frameWriter) hold(frame [][]byte) error {
	size := 0
	for _, b := range frame {
		size += len(b)
	}
	fw.mu.Lock()
	if fw.err == nil && size <= holdFrameLimit && len(fw.held)+size <= holdLimit {
		if fw.held == nil {
			fw.held = make([]byte, 0, max(size, 4<<10))
		}
		for _, b := range frame {
			fw.held = append(fw.held, b...)
		}
		fw.mu.Unlock()
		return nil
	}
	fw.mu.Unlock()
	return fw.write(frame)
}

// release writes what hold held back, if anything (nil when nothing is held).
func (fw *frameWriter) release() error { return fw.write(nil) }

// writeBatch writes b, the caller being in charge of writing.
func (fw *frameWriter) writeBatch(b *writeBatch) error {
	b.err = fw.flush(b.bufs)
	b.bufs = nil
	close(b.done)
	fw.handOff(b.err)
	return b.err
}

// handOff ends a write: it records a failure, then passes the charge of writing to a waiter of the
// batch queued meanwhile, or gives it up when there is none. A batch queued after a failure fails
// at once.
func (fw *frameWriter) handOff(err error) {
	for b := fw.passOn(err); b != nil; b = fw.passOn(err) {
		// A batch that only held frames are left in: its senders all withdrew, and no one else
		// waits for it, so its writing stays with the caller.
		err = fw.flush(b.bufs)
		b.err = err
		b.bufs = nil
		close(b.done)
	}
}

// passOn is handOff's step: it returns the batch the caller must write itself, or nil.
func (fw *frameWriter) passOn(err error) *writeBatch {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if err != nil && fw.err == nil {
		fw.err = err
	}
	b := fw.queue
	fw.queue = nil
	switch {
	case b == nil:
		fw.writing = false
	case b.live == 0: // every frame of it was withdrawn
		close(b.done)
		fw.writing = false
	case fw.err != nil:
		b.err = fw.err
		close(b.done)
		fw.writing = false
	case b.waiters == 0:
		return b
	default:
		b.lead <- struct{}{} // never blocks: one send per batch, into a buffer of one
	}
	return nil
}

// flush writes the slices of one or more frames.
func (fw *frameWriter) flush(bufs [][]byte) error {
	if fw.vectors != nil {
		_, err := fw.vectors.writeVectors(bufs)
		return err
	}
	if fw.vectored || len(bufs) == 1 {
		fw.vec = bufs
		_, err := fw.vec.WriteTo(fw.w)
		fw.vec = nil
		return err
	}
	// A plain io.Writer writes a net.Buffers one slice at a time: gather the small ones.
	scratch := fw.scratch[:0]
	for _, b := range bufs {
		if len(scratch) > 0 && len(scratch)+len(b) > gatherLimit {
			if _, err := fw.w.Write(scratch); err != nil {
				return err
			}
			scratch = scratch[:0]
		}
		if len(b) >= gatherLimit {
			if _, err := fw.w.Write(b); err != nil {
				return err
			}
			continue
		}
		scratch = append(scratch, b...)
	}
	if len(scratch) > 0 {
		if _, err := fw.w.Write(scratch); err != nil {
			return err
		}
	}
	fw.scratch = scratch[:0]
	return nil
}
