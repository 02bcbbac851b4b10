package aspectipc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// InStream is a handler's input stream (PROTOCOL.md 13): the items the caller sends. It buffers
// at most its window of items and grants the caller credit as the handler takes them, so a
// handler that stops reading stops the caller. Safe for concurrent use.
type InStream struct {
	t      *streamTable
	id     ID
	dir    string          // "in" for a handler's input stream, "out" for a caller's output stream
	ctx    context.Context // the request's context
	window int64

	mu     sync.Mutex
	buf    []any
	unused int64 // credit granted and not yet used by the caller
	taken  int64 // items taken since the last grant
	seq    int64 // the next item's seq
	end    error // io.EOF or the caller's *Error, once the stream has ended
	err    error // set once the stream has failed (cancelled, protocol error, answered)
	wake   chan struct{}
}

// Recv returns the next item, waiting for it. At the end of the stream it returns io.EOF; when
// the caller failed the stream ($/stream/error) an *Error with the caller's code, message and
// data; when ctx is done or the request is cancelled, the cause; on a stream protocol error an
// *Error with code -32010. Taking an item may grant the producer credit, which waits for room in
// the channel's write queue; if ctx ends meanwhile, Recv returns the item at once, and the credit
// is granted with a later one.
func (s *InStream) Recv(ctx context.Context) (any, error) {
	for {
		v, wake, err := s.next(ctx)
		if wake == nil || err != nil {
			return v, err
		}
		if err := s.waitItem(ctx, wake); err != nil {
			return nil, err
		}
	}
}

// waitItem waits for wake (an item, or the stream's end) or the end of either context (wake was
// taken with the buffer check, so no item can slip between them).
func (s *InStream) waitItem(ctx context.Context, wake chan struct{}) error {
	return waitStream(ctx, s.ctx, wake)
}

// next takes the next item without waiting. When none is there yet it returns the channel that
// closes when one arrives (nil when it took one or failed).
// Taking the ceil(window/2)-th item since the last grant grants that many again (13.3).
func (s *InStream) next(ctx context.Context) (v any, wake chan struct{}, err error) {
	s.mu.Lock()
	if s.ctx.Err() != nil { // the request's cancellation cause first: it decides the answer
		s.mu.Unlock()
		return nil, nil, context.Cause(s.ctx)
	}
	if s.err != nil {
		s.mu.Unlock()
		return nil, nil, s.err
	}
	if len(s.buf) == 0 {
		end, wake := s.end, s.wake
		s.mu.Unlock()
		if end != nil {
			return nil, nil, end
		}
		return nil, wake, nil
	}
	v = s.buf[0]
	s.buf[0] = nil
	s.buf = s.buf[1:]
	s.taken++
	var add int64
	if s.taken >= (s.window+1)/2 && s.end == nil {
		add, s.taken = s.taken, 0
		s.unused += add
	}
	s.mu.Unlock()
	if add > 0 {
		stop, release := doneOfEither(ctx, s.ctx)
		if err := s.t.grant(stop, s.id, s.dir, add); errors.Is(err, errWithdrawn) {
			s.owe(add)
		}
		release()
	}
	return v, nil, nil
}

// owe takes back a grant of add that was never sent: the next grant carries it.
func (s *InStream) owe(add int64) {
	s.mu.Lock()
	s.unused -= add
	s.taken += add
	s.mu.Unlock()
}

// stop fails the stream with err (the first reason wins), discarding buffered items.
func (s *InStream) stop(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err, s.buf = err, nil
		close(s.wake)
	}
}

// receive applies an item, end or error from the producer; it returns the broken rule, if any
// (13.5).
func (s *InStream) receive(m streamMsg) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.end != nil {
		return "" // cancelled or ended: what crosses it is dropped
	}
	switch m.kind {
	case streamItem:
		if m.seq != s.seq {
			return fmt.Sprintf("item seq %d is not the next one (%d)", m.seq, s.seq)
		}
		if s.unused == 0 {
			return fmt.Sprintf("item seq %d exceeds the window of %d", m.seq, s.window)
		}
		s.unused--
		s.seq++
		s.buf = append(s.buf, m.value)
	case streamEnd:
		s.end = io.EOF
	case streamError:
		s.end = m.err
	default:
		return m.why
	}
	close(s.wake)
	s.wake = make(chan struct{})
	return ""
}

// finish ends a caller's output stream with the response: io.EOF after the buffered items for a
// result, e for an error response.
func (s *InStream) finish(e *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.end != nil {
		return
	}
	s.end = io.EOF
	if e != nil {
		s.end = e
	}
	close(s.wake)
	s.wake = make(chan struct{})
}
