package aspectipc

import (
	"context"
	"errors"
	"sync"
)

// OutStream is a handler's output stream (PROTOCOL.md 13): the items it sends reach the caller
// as they come, before the result. Flow control is the caller's: Send blocks while the caller has
// granted no credit. Safe for concurrent use.
type OutStream struct {
	t   *streamTable
	id  ID
	dir string          // "out" for a handler's output stream, "in" for a caller's input stream
	ctx context.Context // the request's context: cancelled, shut down, channel closed

	sendMu sync.Mutex // one Send at a time, so that seq order is wire order

	mu     sync.Mutex
	credit int64
	seq    int64
	err    error         // set once the stream has failed or ended
	wake   chan struct{} // closed and replaced when credit arrives or the stream stops
}

// Send sends one item, waiting while the caller has granted no credit (PROTOCOL.md 13.3), then
// for room in the channel's write queue (a peer that does not read holds it up). It returns an
// error when ctx is done, when the request is cancelled (the cause, answered -32002 if the handler
// returns it), on a stream protocol error (*Error, code -32010), or when the item cannot be
// encoded or is over the peer's size limit (the stream stays open: the item was not sent and a
// later one may be). Ended while it waits, Send returns ctx's cause (or the request's), with the
// item unsent, or being written if its write had begun.
//
// When Send returns nil the item is written: its buffers are the caller's again, so a producer
// may refill one []byte for every item (as with io.Writer). After an error they may still be
// being written (a cancel that came in mid-write lets the write finish): leave them untouched.
func (s *OutStream) Send(ctx context.Context, v any) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	for {
		seq, wake, err := s.take()
		ok := wake == nil
		if err != nil {
			return err
		}
		if ok {
			stop, release := doneOfEither(ctx, s.ctx)
			err := s.t.hooks.notify(stop, "$/stream/item", map[string]any{"stream": s.id.Value(), "dir": s.dir, "seq": seq, "value": v})
			release()
			var ce *CodecError
			switch {
			case errors.Is(err, errWithdrawn):
				s.refund() // never sent: the next item takes its seq
				return s.ended(ctx)
			case errors.Is(err, errWriteStarted): // it will arrive, with its seq
				return s.ended(ctx)
			case errors.As(err, &ce) || tooLarge(err) != nil:
				s.refund() // never sent: the stream stays open (13)
			}
			return err
		}
		if err := s.waitCredit(ctx, wake); err != nil {
			return err
		}
	}
}

// ended is the error of a step whose wait ended with ctx or the request: the request's
// cancellation cause first, as take says, for it decides the answer.
func (s *OutStream) ended(ctx context.Context) error {
	if s.ctx.Err() != nil {
		return context.Cause(s.ctx)
	}
	return context.Cause(ctx)
}

// waitCredit waits for wake (credit, or the stream's end) or the end of either context (wake was
// taken with the credit check, so no credit can slip between them).
func (s *OutStream) waitCredit(ctx context.Context, wake chan struct{}) error {
	return waitStream(ctx, s.ctx, wake)
}

// take reserves one credit and the next seq. With no credit it returns the channel that closes
// when credit arrives (nil when it reserved one).
func (s *OutStream) take() (seq int64, wake chan struct{}, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil { // the request's cancellation cause first: it decides the answer
		return 0, nil, context.Cause(s.ctx)
	}
	if s.err != nil {
		return 0, nil, s.err
	}
	if s.credit == 0 {
		return 0, s.wake, nil
	}
	s.credit--
	s.seq++
	return s.seq - 1, nil, nil
}

func (s *OutStream) refund() {
	s.mu.Lock()
	s.credit++
	s.seq--
	s.mu.Unlock()
}

// stop fails the stream with err (the first reason wins) and wakes a waiting Send.
func (s *OutStream) stop(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
		close(s.wake)
	}
}

// receive applies a credit (or a malformed message) from the consumer; it returns the broken
// rule, if any (13.5).
func (s *OutStream) receive(m streamMsg) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return "" // cancelled or ended: late credit is dropped
	}
	if m.kind != streamCredit {
		return m.why
	}
	if m.add > MaxStreamWindow-s.credit { // not s.credit+m.add: add may be near 2^63
		return "credit would rise above 1024"
	}
	s.credit += m.add
	close(s.wake)
	s.wake = make(chan struct{})
	return ""
}
