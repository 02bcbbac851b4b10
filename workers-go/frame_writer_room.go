package aspectipc

import (
	"errors"
	"runtime"
)

// defaultMaxEncoding is how many senders may encode their messages at once: encoding is CPU work,
// so more than a few gain nothing, while each may hold a frame as large as the peer accepts.
func defaultMaxEncoding() int { return min(max(runtime.GOMAXPROCS(0), 2), 4) }

// errRoomClosed is returned by room when closed closed while it waited.
var errRoomClosed = errors.New("closed while waiting for room to write")

// room waits until the sender may encode its frame: no more than queueLimit bytes wait and fewer
// than maxEncoding senders are encoding. It returns nil with room reserved for the sender, which
// it passes on with its frame (writeReserved, holdReserved) or gives back (unreserve); otherwise
// errWithdrawn when cancel closes first, errRoomClosed when closed does, or the writer's failure.
// Waiting, it first queues what hold holds back, which would otherwise wait with it.
func (fw *frameWriter) room(cancel, closed <-chan struct{}) error {
	fw.mu.Lock()
	for {
		if fw.err != nil {
			err := fw.err
			fw.mu.Unlock()
			return err
		}
		if fw.queued <= queueLimit && fw.encoding < fw.maxEncoding {
			fw.encoding++
			fw.mu.Unlock()
			return nil
		}
		if fw.held != nil && fw.writing { // else the next write, by an encoding sender, takes it
			fw.enqueue([][]byte{fw.held})
			fw.held = nil
		}
		if fw.roomFreed == nil {
			fw.roomFreed = make(chan struct{})
		}
		freed := fw.roomFreed
		fw.mu.Unlock()
		select {
		case <-freed:
		case <-cancel:
			return errWithdrawn
		case <-closed:
			return errRoomClosed
		}
		fw.mu.Lock()
	}
}

// unreserve gives back the room a sender got and will not use (its message failed to encode).
func (fw *frameWriter) unreserve() {
	fw.mu.Lock()
	fw.encoding--
	fw.freeRoom()
	fw.mu.Unlock()
}

// freeRoom wakes the senders waiting for room, if any, to look again; fw.mu must be held.
func (fw *frameWriter) freeRoom() {
	if fw.roomFreed != nil {
		close(fw.roomFreed)
		fw.roomFreed = nil
	}
}
