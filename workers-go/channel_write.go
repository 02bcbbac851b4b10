package aspectipc

import (
	"errors"
	"fmt"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/outframe"
)

// send encodes and writes one message as a single frame.
func (c *Channel) send(msg any) error { return c.sendOr(nil, msg) }

// sendOr is send that stops waiting when cancel closes: before the message is encoded (it waits
// for room in the write queue first) or while its frame is queued, it is given up unsent
// (errWithdrawn); once its frame is being written, that is left to finish in the background
// (errWriteStarted).
func (c *Channel) sendOr(cancel <-chan struct{}, msg any) error {
	return c.sendWaiting(cancel, cancel, msg)
}

// sendWaiting is sendOr with the wait for room ended by roomCancel, and the write's by writeCancel.
func (c *Channel) sendWaiting(roomCancel, writeCancel <-chan struct{}, msg any) error {
	if err := c.room(roomCancel); err != nil {
		return err
	}
	f, codecErr, framingErr := c.encodeFrame(msg)
	if codecErr != nil || framingErr != nil {
		c.writer.unreserve()
		f.Release()
		if codecErr != nil {
			return codecErr
		}
		return framingErr
	}
	err := c.writeOr(writeCancel, f)
	if !errors.Is(err, errWriteStarted) { // else the writer releases f once it is written
		f.Release()
	}
	return err
}

// room waits for room in the write queue before a message is encoded (frameWriter.room), so that
// a peer that does not read holds up senders, not encoded copies of their messages. On nil the
// room is the caller's: it writes its frame with writeOr or hold, or gives it back
// (c.writer.unreserve). errWithdrawn when cancel closes first.
func (c *Channel) room(cancel <-chan struct{}) error {
	select {
	case <-c.done:
		return c.closedError()
	default:
	}
	err := c.writer.room(cancel, c.done)
	switch {
	case err == nil, errors.Is(err, errWithdrawn):
		return err
	case errors.Is(err, errRoomClosed):
		return c.closedError()
	}
	return c.checkWrite(err)
}

func (c *Channel) closedError() error {
	return &Error{Code: CodeChannelClosed, Message: c.name + " channel is closed", cause: ErrChannelClosed}
}

// encodeFrame encodes msg and frames it, failing with the codec's error or else the framing's.
// With the SDK's framings the payload is built in place, behind the header, with large binaries
// spliced in rather than copied. The caller releases f.
func (c *Channel) encodeFrame(msg any) (f *outframe.Frame, codecErr, framingErr error) {
	enc, direct := c.codec.(appendEncoder)
	if r, ok := msg.(wireResponse); ok && !direct {
		msg = c.rpc.Response(r.id, r.result)
	}
	inPlace, ok := c.framing.(inPlaceFraming)
	if !ok {
		f = outframe.Get(0)
		payload, err := c.codec.Encode(msg)
		if err != nil {
			return f, err, nil
		}
		frame, err := c.framing.Encode(payload)
		f.Splice(frame)
		return f, nil, err
	}
	f = outframe.Get(inPlace.prefixSize())
	if direct {
		codecErr = enc.encodeInto(f, msg)
	} else {
		var payload []byte
		payload, codecErr = c.codec.Encode(msg)
		f.Splice(payload)
	}
	if codecErr != nil {
		return f, codecErr, nil
	}
	return f, nil, inPlace.frameInPlace(f)
}

// write writes f, for a sender that got room (c.room).
func (c *Channel) write(f *outframe.Frame) error { return c.writeOr(nil, f) }

// writeOr is write that stops waiting when cancel closes (frameWriter.writeOr).
func (c *Channel) writeOr(cancel <-chan struct{}, f *outframe.Frame) error {
	select {
	case <-c.done:
		c.writer.unreserve()
		return c.closedError()
	default:
	}
	return c.checkWrite(c.writer.writeReserved(f.Vectors(), cancel, f))
}

// hold is write for a response of the read loop's own (an inline handler's): held back to go out
// with the other responses to what the same read brought (frameWriter.hold), written once the
// read loop has handled them (releaseHeld). The caller got room (c.room).
func (c *Channel) hold(f *outframe.Frame) error {
	select {
	case <-c.done:
		c.writer.unreserve()
		return c.closedError()
	default:
	}
	return c.checkWrite(c.writer.holdReserved(f.Vectors()))
}

// releaseHeld writes the responses hold held back.
func (c *Channel) releaseHeld() {
	if err := c.checkWrite(c.writer.release()); err != nil {
		c.log("cannot send the responses held for one write: %v", err)
	}
}

// checkWrite ends the channel when a write failed.
func (c *Channel) checkWrite(err error) error {
	if err != nil && !errors.Is(err, errWithdrawn) && !errors.Is(err, errWriteStarted) {
		// The stream is unusable (a frame may be half written, the peer may be gone: a broken
		// stdout means the parent is): the channel ends, as when the peer closes it.
		c.writeFailed.Store(true)
		c.closeWith(ErrChannelClosed)
		return fmt.Errorf("%s channel: write failed: %w", c.name, err)
	}
	return err
}
