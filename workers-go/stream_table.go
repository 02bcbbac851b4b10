package aspectipc

import (
	"context"
	"fmt"
	"sync"
)

// streamTable is one channel's responder-side stream state (PROTOCOL.md 13): the streams the
// peer opened with its requests, the 64-stream limit, and the handling of $/stream/* messages.
// It does no I/O itself: it writes through hooks, so that the vectors drive it without a channel.
type streamTable struct {
	channel  string // "control", "data": named in errors
	inWindow int64  // the window of input streams (the handler's, 13.3)
	hooks    streamHooks

	mu   sync.Mutex
	open int // streams open, an in+out request counting two
	reqs map[ID]*streamReq
	// calls are the streams this side opened with its own requests (the requester side).
	calls map[ID]*streamReq
	// windows are the input windows of handlers registered with InputWindow, by method.
	windows map[string]int64
}

// streamHooks are how the table acts on its channel.
type streamHooks struct {
	// notify writes a $/stream/* notification. When cancel closes while it waits for room to
	// write, it gives up: errWithdrawn, nothing sent; errWriteStarted, once it was being written
	// (it will arrive whole).
	notify func(cancel <-chan struct{}, method string, params map[string]any) error
	// fail answers the request with e at once, unless it is answered already, and cancels its
	// handler (a stream protocol error, 13.5).
	fail func(id ID, e *Error)
}

// streamReq is the streams of one request, on either side: the responder produces "out" and
// consumes "in", the requester the other way round.
type streamReq struct {
	id       ID
	n        int
	producer *OutStream
	consumer *InStream
	// abort, on the requester side, fails the call (a stream protocol error, 13.5).
	abort func(e *Error)
}

func newStreamTable(channel string, inWindow int64, hooks streamHooks) *streamTable {
	return &streamTable{channel: channel, inWindow: inWindow, hooks: hooks, reqs: map[ID]*streamReq{}, calls: map[ID]*streamReq{}}
}

// accept opens the streams of a request whose descriptor is valid, or answers why not: -32009
// over the limit (13.8). An input stream gets its whole window of credit at once (13.3).
func (t *streamTable) accept(id ID, o *streamOpen) (*streamReq, *Error) {
	return t.acceptFor(id, o, "")
}

// setWindow sets the input window of method's handler; 0 restores the table's default.
func (t *streamTable) setWindow(method string, window int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if window == 0 {
		delete(t.windows, method)
		return
	}
	if t.windows == nil {
		t.windows = map[string]int64{}
	}
	t.windows[method] = window
}

// acceptFor is accept for a request of method, whose handler may have its own input window.
func (t *streamTable) acceptFor(id ID, o *streamOpen, method string) (*streamReq, *Error) {
	t.mu.Lock()
	window := t.inWindow
	if w, ok := t.windows[method]; ok {
		window = w
	}
	if t.open+o.count() > MaxOpenStreams {
		n := t.open
		t.mu.Unlock()
		return nil, &Error{
			Code:    CodeTooManyStreams,
			Message: fmt.Sprintf("too many open streams on %s: %d open, limit %d", t.channel, n, MaxOpenStreams),
			Data:    map[string]any{"limit": int64(MaxOpenStreams)},
		}
	}
	r := &streamReq{id: id, n: o.count()}
	if o.out {
		r.producer = &OutStream{t: t, id: id, dir: "out", credit: o.window, wake: make(chan struct{})}
	}
	if o.in {
		r.consumer = &InStream{t: t, id: id, dir: "in", window: window, unused: window, wake: make(chan struct{})}
	}
	t.open += r.n
	t.reqs[id] = r
	t.mu.Unlock()
	if r.consumer != nil {
		_ = t.grant(nil, id, "in", window)
	}
	return r, nil
}

// grant sends the producer add more credit; it gives up when cancel closes first (notify).
func (t *streamTable) grant(cancel <-chan struct{}, id ID, dir string, add int64) error {
	return t.hooks.notify(cancel, "$/stream/credit", map[string]any{"stream": id.Value(), "dir": dir, "add": add})
}

// doneOfEither returns a channel closed once a or b is done (a stream step waits for its caller's
// ctx and its request's), and the function that lets it go.
func doneOfEither(a, b context.Context) (<-chan struct{}, func()) {
	da, db := a.Done(), b.Done()
	switch {
	case db == nil || da == db:
		return da, func() {}
	case da == nil:
		return db, func() {}
	}
	either, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return either.Done(), func() { stop(); cancel() }
}

// release closes a request's streams when it is answered: they no longer count, and a later
// step of its handler on them fails with err.
func (t *streamTable) release(r *streamReq, err error) {
	t.mu.Lock()
	if t.reqs[r.id] == r {
		delete(t.reqs, r.id)
	}
	t.open -= r.n // once per request: its one answer releases it, even if its id was reused
	t.mu.Unlock()
	r.stop(err)
}

// bind gives the streams their request's context, before the handler starts.
func (r *streamReq) bind(ctx context.Context) {
	if r.producer != nil {
		r.producer.ctx = ctx
	}
	if r.consumer != nil {
		r.consumer.ctx = ctx
	}
}

// stop fails both streams of r with err (cancellation, protocol error, answer).
func (r *streamReq) stop(err error) {
	if r.producer != nil {
		r.producer.stop(err)
	}
	if r.consumer != nil {
		r.consumer.stop(err)
	}
}

// cancel ends the streams of a cancelled request (13.6): their steps raise err, and late
// messages for them are dropped. They stay counted until the request is answered.
func (t *streamTable) cancel(id ID, err error) {
	t.mu.Lock()
	r := t.reqs[id]
	t.mu.Unlock()
	if r != nil {
		r.stop(err)
	}
}

// handle processes one $/stream/* notification, in the read loop, at once (13.4). Messages for
// streams this table does not hold (unknown, ended, cancelled, or the requester side) are
// dropped (13.5).
func (t *streamTable) handle(method string, params any) {
	m := parseStreamMsg(method, params)
	if m.kind == streamUnnamed {
		return
	}
	t.mu.Lock()
	r := t.reqs[m.stream]
	t.mu.Unlock()
	// What a requester sends its responder: items, end and error for dir "in", credit for dir
	// "out". The rest is for the requester side of this channel: an end or error with dir "out"
	// names an output stream this side consumes, which it fails (13.5).
	toResponder := (method == "$/stream/credit") == (m.dir == "out")
	if !toResponder {
		t.mu.Lock()
		r = t.calls[m.stream]
		t.mu.Unlock()
	}
	if r == nil {
		return
	}
	var perr string
	switch {
	case r.consumer != nil && m.dir == r.consumer.dir:
		perr = r.consumer.receive(m)
	case r.producer != nil && m.dir == r.producer.dir:
		perr = r.producer.receive(m)
	default:
		return
	}
	if perr != "" {
		e := &Error{
			Code:    CodeStreamProtocol,
			Message: fmt.Sprintf("stream %s (%s) on %s: %s", m.stream, m.dir, t.channel, perr),
			Data:    map[string]any{"stream": m.stream.Value(), "dir": m.dir},
		}
		if r.abort != nil {
			r.abort(e)
			return
		}
		r.stop(e)
		t.hooks.fail(m.stream, e)
	}
}

// openCall registers the streams of a request this side sends (the requester side): the output
// stream is consumed with the given window, the input stream produced from zero credit (13.3).
// abort fails the call on a protocol error.
func (t *streamTable) openCall(id ID, o *streamOpen, ctx context.Context, abort func(*Error)) (*streamReq, *Error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	open := 0
	for _, r := range t.calls {
		open += r.n
	}
	if open+o.count() > MaxOpenStreams {
		return nil, &Error{Code: CodeTooManyStreams, Message: fmt.Sprintf("too many open streams on %s: %d open from this side, limit %d", t.channel, open, MaxOpenStreams),
			Data: map[string]any{"limit": int64(MaxOpenStreams)}}
	}
	r := &streamReq{id: id, n: o.count(), abort: abort}
	if o.out {
		r.consumer = &InStream{t: t, id: id, dir: "out", ctx: ctx, window: o.window, unused: o.window, wake: make(chan struct{})}
	}
	if o.in {
		r.producer = &OutStream{t: t, id: id, dir: "in", ctx: ctx, wake: make(chan struct{})}
	}
	t.calls[id] = r
	return r, nil
}

// dropCall forgets a call's streams and fails them with err (cancelled, protocol error).
func (t *streamTable) dropCall(r *streamReq, err error) {
	t.mu.Lock()
	if t.calls[r.id] == r {
		delete(t.calls, r.id)
	}
	t.mu.Unlock()
	r.stop(err)
}

// failCall fails the streams of call id, if it has any, with err: its answer broke the protocol.
func (t *streamTable) failCall(id ID, err error) {
	t.mu.Lock()
	r := t.calls[id]
	delete(t.calls, id)
	t.mu.Unlock()
	if r != nil {
		r.stop(err)
	}
}

// answered ends the streams of a call when its response arrives: the output stream ends after its
// buffered items (with the result, or the error), the input stream is closed (13.2, 13.6).
func (t *streamTable) answered(id ID, e *Error) {
	t.mu.Lock()
	r := t.calls[id]
	delete(t.calls, id)
	t.mu.Unlock()
	if r == nil {
		return
	}
	if r.consumer != nil {
		r.consumer.finish(e)
	}
	if r.producer != nil {
		r.producer.stop(&Error{Code: CodeStreamClosed, Message: fmt.Sprintf("stream %s (in) on %s: closed, the peer answered the request", id, t.channel)})
	}
}

// dropCalls fails the streams of every call when the channel closes.
func (t *streamTable) dropCalls(err error) {
	t.mu.Lock()
	calls := t.calls
	t.calls = map[ID]*streamReq{}
	t.mu.Unlock()
	for _, r := range calls {
		r.stop(err)
	}
}
