package aspectipc

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// StreamOptions says which streams RequestStream opens (PROTOCOL.md 13.1).
type StreamOptions struct {
	// OutWindow, from 1 to 1024, opens an output stream (the peer's handler sends items) with
	// that window; 0 opens none.
	OutWindow int
	// In opens an input stream: the caller sends items with StreamCall.In.
	In bool
}

// StreamCall is a request with streams, made by RequestStream. Read the output stream with
// Out.Recv (io.EOF once the peer has answered and every item was taken), send on the input stream
// with In.Send and end it with CloseInput or AbortInput, then take the answer with Result.
type StreamCall struct {
	// Out is the output stream (nil when not opened): items the peer's handler sends.
	Out *InStream
	// In is the input stream (nil when not opened): Send waits for the peer's credit, and fails
	// with -32011 once the peer has answered.
	In *OutStream

	c       *Channel
	ctx     context.Context // RequestStream's
	r       *streamReq
	method  string
	answer  chan outcome // the response
	ended   chan struct{}
	endOnce sync.Once
	endErr  error // set before ended closes
	inOnce  sync.Once
	stopCtx func() bool
}

// RequestStream calls method on the peer with streams (PROTOCOL.md 13): it sends the request,
// with "$/stream" added to params (a map, or nil), and returns at once. ctx bounds the whole call:
// when it ends first the request is cancelled ($/cancelRequest), its streams fail and later
// items and the answer are dropped; a ctx that has ended already, or ends while the request waits
// for room in the write queue, fails RequestStream as it fails Request. At most 64 streams are open at a time on the channel from
// this side; over that RequestStream fails with -32009 and sends nothing. From an Inline handler
// of this channel (its ctx) it fails at once, like Request.
func (c *Channel) RequestStream(ctx context.Context, method string, params map[string]any, opts StreamOptions) (*StreamCall, error) {
	if c == nil {
		return nil, absentError(ctx, "stream request", method)
	}
	if err := c.inlineWait(ctx, "stream request", method); err != nil {
		return nil, err
	}
	o := &streamOpen{in: opts.In}
	desc := map[string]any{}
	if opts.OutWindow != 0 {
		if opts.OutWindow < 1 || opts.OutWindow > MaxStreamWindow {
			return nil, fmt.Errorf("aspectipc: RequestStream %q: OutWindow %d is not from 1 to %d", method, opts.OutWindow, MaxStreamWindow)
		}
		o.out, o.window = true, int64(opts.OutWindow)
		desc["out"] = map[string]any{"window": o.window}
	}
	if opts.In {
		desc["in"] = map[string]any{}
	}
	if len(desc) == 0 {
		return nil, fmt.Errorf("aspectipc: RequestStream %q: no stream (set OutWindow or In)", method)
	}
	full := make(map[string]any, len(params)+1)
	for k, v := range params {
		full[k] = v
	}
	full[streamMember] = desc

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, &Error{Code: CodeChannelClosed, Message: c.name + " channel is closed", cause: ErrChannelClosed}
	}
	c.nextID++
	id := IntID(c.nextID)
	s := &StreamCall{c: c, ctx: ctx, method: method, answer: make(chan outcome, 1), ended: make(chan struct{})}
	c.pending[id] = s.answer
	c.mu.Unlock()
	r, e := c.streams.openCall(id, o, ctx, s.fail)
	if e != nil {
		c.forget(id)
		return nil, e
	}
	s.r, s.Out, s.In = r, r.consumer, r.producer
	// Sent once there is room in the write queue, unless ctx ends first (as Request).
	err := error(errWithdrawn)
	if ctx.Err() == nil {
		err = c.sendOr(ctx.Done(), c.rpc.Request(id, method, full))
	}
	switch {
	case errors.Is(err, errWithdrawn), errors.Is(err, errWriteStarted):
		ended := c.requestEnded(ctx, method)
		c.forget(id)
		c.streams.dropCall(r, ended)
		if errors.Is(err, errWriteStarted) {
			c.sendCancel(id)
		}
		return nil, ended
	case err != nil:
		c.forget(id)
		c.streams.dropCall(r, err)
		return nil, named(err, "request")
	}
	s.stopCtx = context.AfterFunc(ctx, func() { s.fail(c.requestEnded(ctx, method).(*Error)) })
	return s, nil
}

// Result waits for the answer: the handler's result (the output stream's final value), or its
// error; -32010 when the peer broke the stream protocol; the cancellation when ctx (this one or
// RequestStream's) ended first, which cancels the request.
func (s *StreamCall) Result(ctx context.Context) (Result, error) {
	if o, ok := s.outcome(); ok { // an answer already there wins over an ended ctx
		return o.result, o.err
	}
	waiter := waiterOf(ctx, s.ctx)
	waiter.waitingForPeer()
	defer waiter.doneWaiting()
	select {
	case o := <-s.answer:
		s.answer <- o
	case <-s.ended:
	case <-ctx.Done():
		s.fail(s.c.requestEnded(ctx, s.method).(*Error))
	}
	o, _ := s.outcome()
	return o.result, o.err
}

// outcome returns the answer or the local end, if the call has either.
func (s *StreamCall) outcome() (outcome, bool) {
	select {
	case o := <-s.answer:
		s.answer <- o // kept for a later Result
		s.stopCtx()
		return o, true
	case <-s.ended:
		return outcome{err: s.endErr}, true
	default:
		return outcome{}, false
	}
}

// Cancel stops the call: $/cancelRequest, its streams fail, later items and the answer are
// dropped (PROTOCOL.md 13.6).
func (s *StreamCall) Cancel() {
	s.fail(&Error{Code: CodeRequestCancelled, Message: fmt.Sprintf("request %q on the %s channel cancelled", s.method, s.c.name), cause: ErrRequestCancelled})
}

// fail ends the call locally with e, once, unless it was answered already.
func (s *StreamCall) fail(e *Error) {
	s.endOnce.Do(func() {
		s.c.mu.Lock()
		_, pending := s.c.pending[s.r.id]
		delete(s.c.pending, s.r.id)
		s.c.mu.Unlock()
		if !pending {
			return // answered: the streams ended with the answer
		}
		s.endErr = e
		s.c.streams.dropCall(s.r, e)
		s.c.sendCancel(s.r.id)
		close(s.ended)
	})
}

// CloseInput ends the input stream normally ($/stream/end); AbortInput ends it with an error the
// handler's next read raises ($/stream/error). Only the first of them does anything. Either waits
// for room in the write queue, until RequestStream's ctx ends (then its error, as Request's).
func (s *StreamCall) CloseInput() error { return s.endInput("$/stream/end", nil) }

// AbortInput ends the input stream with e (its code, message and data reach the handler).
func (s *StreamCall) AbortInput(e *Error) error {
	em := map[string]any{"code": int64(e.Code), "message": e.Message}
	if e.Data != nil {
		em["data"] = e.Data
	}
	return s.endInput("$/stream/error", em)
}

func (s *StreamCall) endInput(method string, e map[string]any) error {
	if s.In == nil {
		return fmt.Errorf("aspectipc: %q: the call has no input stream", s.method)
	}
	err := error(nil)
	s.inOnce.Do(func() {
		s.In.sendMu.Lock() // after every item already being sent
		defer s.In.sendMu.Unlock()
		s.In.mu.Lock()
		stopped := s.In.err != nil
		s.In.mu.Unlock()
		if stopped {
			return // answered or cancelled: nothing more is sent for this stream
		}
		s.In.stop(&Error{Code: CodeStreamClosed, Message: fmt.Sprintf("stream %s (in) on %s: the input stream was ended", s.r.id, s.c.name)})
		params := map[string]any{"stream": s.r.id.Value(), "dir": "in"}
		if e != nil {
			params["error"] = e
		}
		err = s.c.streams.hooks.notify(s.ctx.Done(), method, params)
		if errors.Is(err, errWithdrawn) || errors.Is(err, errWriteStarted) {
			err = s.c.requestEnded(s.ctx, s.method)
		}
	})
	return err
}
