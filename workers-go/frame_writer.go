package aspectipc

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// frameWriter serializes frames onto a transport with group commit. A sender that finds no write
// in progress writes its frame itself; frames sent while a write is in progress are queued, and
// the first of their senders to be woken writes them in one go (one writev on a socket) once the
// write in progress ends. Every sender returns once its own frame is written, with that write's
// outcome, so:
//   - frames never interleave, and go out in the order their senders queued them;
//   - a frame is on the wire when write returns (what closes after a response relies on this);
//   - frames that are ready together cost one system call, not one each.
//
// What waits is bounded in bytes, not only by the senders waiting (PROTOCOL.md 2.6, 4.5): a write
// takes at most queueLimit bytes of the queue (or one larger frame), what is left stays queued
// and counted, and a sender waits for room (room) before it even encodes its message, while more
// than queueLimit bytes wait or maxEncoding senders are encoding already. So a peer that stops
// reading holds up the senders, which hold their arguments, not encoded copies of them: a hundred
// senders of one 5 MB string hold a frame or two, not a hundred.
//
// A failed write leaves the stream unusable (a frame may be half written), so its error is
// returned to the frames queued and to every later write.
type frameWriter struct {
	w        io.Writer
	vectored bool         // w writes a net.Buffers with writev
	vectors  vectorWriter // or else w writes slices in one go itself, or nil
	trier    vectorTrier  // w can write without waiting (a blocked data connection), or nil
	// Used by the sender in charge of writing only: the slices being written (kept here so that
	// writing allocates nothing), and a buffer to gather small frames for a plain io.Writer.
	vec     net.Buffers
	scratch []byte
	// maxEncoding is how many senders may be encoding at once (given room and not yet queued).
	maxEncoding int

	mu      sync.Mutex
	writing bool // a sender is in charge of writing
	// queue is the batches waiting for the write in progress to end, oldest first, to tail; a
	// batch is at most queueLimit bytes or one frame. queued is their bytes.
	queue, tail *writeBatch
	queued      int
	encoding    int           // senders given room that have not queued or written their frame yet
	roomFreed   chan struct{} // when set, closed once room may have come free (room waits for it)
	err         error         // sticky: a write failed
	// held is frames the read loop held back (hold), copied end to end: they go out first in the
	// next write, whoever makes it, so that frames still leave in the order their writes returned.
	held []byte
	// detached counts the writes flushOr and writeBatchOr left to a goroutine (read by tests: a
	// frame the socket takes at once must not go there).
	detached atomic.Int64
}

// writeBatch is frames queued during one write, written together.
type writeBatch struct {
	bufs    net.Buffers
	size    int           // bytes of its frames that were not withdrawn
	live    int           // frames in bufs that were not withdrawn
	waiters int           // senders waiting for it: held frames have none, so a batch of them alone has 0
	taken   bool          // out of the queue: being written, or written
	lead    chan struct{} // receives once: the waiter that gets it writes the batch
	done    chan struct{} // closed once the batch is written, or has failed
	err     error
	next    *writeBatch
}

// queueLimit bounds the bytes waiting to be written: a batch takes at most this much (or one larger
// frame), and a sender waits for room while more than this waits.
const queueLimit = 256 << 10

// errWithdrawn is returned by writeOr when the frame was taken back out of the queue, unsent, and
// by room when cancel closed first (nothing was encoded).
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
	trier, _ := w.(vectorTrier)
	return &frameWriter{w: w, vectored: vectored, vectors: vectors, trier: trier, maxEncoding: defaultMaxEncoding()}
}

// vectorWriter is a writer with its own writev (a blocking data connection).
type vectorWriter interface {
	writeVectors(bufs [][]byte) (int, error)
}

// write writes one frame given as consecutive slices, which must stay untouched until it returns.
func (fw *frameWriter) write(frame [][]byte) error { return fw.put(frame, nil, nil, false) }

// releaser frees the buffers of a frame (an *outframe.Frame: an interface rather than a method
// value, which would be allocated on every write).
type releaser interface{ Release() }

// writeOr is write that gives up when cancel closes first: a frame still queued is taken back out
// (errWithdrawn, nothing of it is written); a frame being written is written whole by a goroutine
// (errWriteStarted) which then releases owner, for the caller no longer owns the frame's buffers.
// Otherwise releasing is left to the caller. A nil cancel waits for the write, whatever it takes.
func (fw *frameWriter) writeOr(frame [][]byte, cancel <-chan struct{}, owner releaser) error {
	return fw.put(frame, cancel, owner, false)
}

// writeReserved is writeOr for a sender that got room (room): the frame takes the room's place.
func (fw *frameWriter) writeReserved(frame [][]byte, cancel <-chan struct{}, owner releaser) error {
	return fw.put(frame, cancel, owner, true)
}

func (fw *frameWriter) put(frame [][]byte, cancel <-chan struct{}, owner releaser, reserved bool) error {
	size := 0
	for _, b := range frame {
		size += len(b)
	}
	fw.mu.Lock()
	if reserved {
		fw.encoding--
		fw.freeRoom()
	}
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
		return fw.flushOr(frame, cancel, owner)
	}
	if held != nil { // a frame of its own, never withdrawn: its writes have returned
		fw.enqueue([][]byte{held})
	}
	b, start := fw.tail, 0
	if len(frame) > 0 {
		b, start = fw.enqueue(frame)
	}
	b.waiters++
	fw.mu.Unlock()
	select {
	case <-b.done:
		return b.err
	case <-b.lead:
		return fw.writeBatchOr(b, cancel, owner)
	case <-cancel:
		fw.mu.Lock()
		if !b.taken { // nobody writes the batch yet: take the frame back out
			clear(b.bufs[start : start+len(frame)]) // empty slices write nothing
			b.live--
			b.waiters--
			b.size -= size
			fw.queued -= size
			fw.freeRoom()
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

// enqueue appends a frame to the queue, in its last batch unless that one is full, and returns
// the batch and where the frame starts in it; fw.mu must be held, with a write in progress.
func (fw *frameWriter) enqueue(frame [][]byte) (*writeBatch, int) {
	size := 0
	for _, b := range frame {
		size += len(b)
	}
	b := fw.tail
	if b == nil || b.size >= queueLimit {
		b = &writeBatch{lead: make(chan struct{}, 1), done: make(chan struct{})}
		if fw.tail == nil {
			fw.queue = b
		} else {
			fw.tail.next = b
		}
		fw.tail = b
	}
	start := len(b.bufs)
	b.bufs = append(b.bufs, frame...)
	b.live++
	b.size += size
	fw.queued += size
	return b, start
}

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
func (fw *frameWriter) handOff(err error) { fw.writeLeft(fw.passOn(err)) }

// writeLeft writes b, a batch passOn left to the caller (nil: none), and those it leaves after it.
func (fw *frameWriter) writeLeft(b *writeBatch) {
	for b != nil {
		// A batch that only held frames are left in: its senders all withdrew, and no one else
		// waits for it, so its writing stays with the caller.
		err := fw.flush(b.bufs)
		b.err = err
		b.bufs = nil
		close(b.done)
		b = fw.passOn(err)
	}
}

// passOn is handOff's step: it takes the next batch out of the queue and returns it if the caller
// must write it itself, or else hands it to one of its waiters, or gives the charge of writing up
// when the queue is empty.
func (fw *frameWriter) passOn(err error) *writeBatch {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if err != nil && fw.err == nil {
		fw.err = err
		fw.freeRoom() // the senders waiting for room fail now
	}
	for {
		b := fw.queue
		if b == nil {
			fw.writing = false
			return nil
		}
		fw.queue = b.next
		if fw.queue == nil {
			fw.tail = nil
		}
		b.next = nil
		b.taken = true
		fw.queued -= b.size
		fw.freeRoom()
		switch {
		case b.live == 0: // every frame of it was withdrawn
			close(b.done)
		case fw.err != nil:
			b.err = fw.err
			b.bufs = nil
			close(b.done)
		case b.waiters == 0:
			return b
		default:
			b.lead <- struct{}{} // never blocks: one send per batch, into a buffer of one
			return nil
		}
	}
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
