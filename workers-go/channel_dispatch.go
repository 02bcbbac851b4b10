package aspectipc

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// dispatchRequest dispatches a request whose frame (or line) had size bytes.
func (c *Channel) dispatchRequest(msg Message, size int) {
	c.mu.Lock()
	if refusing := c.refusing; refusing != nil {
		c.mu.Unlock()
		c.sendError(msg.ID, refusing)
		return
	}
	if msg.Method == "$/ping" { // mandatory to answer, on both channels (PROTOCOL.md 8.6)
		c.mu.Unlock()
		c.respond(msg.ID, map[string]any{}, false)
		return
	}
	h := c.handlers[msg.Method]
	inline := c.inline[msg.Method] && size <= inlineRequestLimit
	c.mu.Unlock()
	if isReserved(msg.Method) && c.reserved != nil && c.reserved(msg) {
		return
	}
	if h == nil {
		c.sendError(msg.ID, &Error{Code: CodeMethodNotFound, Message: "Method not found: " + msg.Method})
		return
	}
	if msg.HasParams {
		c.startWithStreams(msg, h, inline)
		return
	}
	if inline {
		c.runInline(msg, h)
		return
	}
	c.start(msg, h)
}

// dispatchNotification dispatches a notification whose frame (or line) had size bytes.
func (c *Channel) dispatchNotification(msg Message, size int) {
	if isReserved(msg.Method) {
		if strings.HasPrefix(msg.Method, "$/stream/") { // at once, in arrival order (13.4)
			c.streams.handle(msg.Method, msg.Params)
		} else if msg.Method == "$/cancelRequest" {
			c.cancelRequest(msg.Params)
		} else if c.reserved != nil {
			c.reserved(msg)
		}
		return // unknown $/ notifications are ignored (PROTOCOL.md 11.2)
	}
	c.mu.Lock()
	h, inline := c.handlers[msg.Method], c.inline[msg.Method]
	c.mu.Unlock()
	if h == nil {
		c.log("dropped notification %q: no handler", msg.Method)
		return
	}
	if inline && c.notificationsIdle() { // else it waits its turn in the queue
		c.runInline(msg, h)
		return
	}
	if !c.notificationRoom(size) { // the read loop waits while the queue is full
		return // closed meanwhile
	}
	c.mu.Lock()
	f := c.startLocked(ID{}, false)
	c.mu.Unlock()
	c.enqueueNotification(handlerTask{f: f, h: h, msg: msg, size: size})
}

// start runs h for a request on a goroutine of its own, once it has a place among the running
// handlers (placeFor: the read loop waits for one).
func (c *Channel) start(msg Message, h Handler) {
	c.mu.Lock()
	if !c.placeForLocked(msg.ID) {
		c.mu.Unlock()
		return
	}
	f := c.startCountedLocked(msg.ID)
	c.mu.Unlock()
	startHandler(handlerTask{f: f, h: h, msg: msg})
}

// startReserved runs h for a reserved method's request or notification ($/shutdown) on a goroutine
// of its own, at once: it takes no place among the handlers, and is not refused.
func (c *Channel) startReserved(msg Message, h Handler) {
	c.mu.Lock()
	f := c.startLocked(msg.ID, msg.Kind == KindRequest)
	c.mu.Unlock()
	startHandler(handlerTask{f: f, h: h, msg: msg})
}

// startLocked registers a running handler; c.mu must be held.
func (c *Channel) startLocked(id ID, isRequest bool) *inflight {
	f := &inflight{owner: c, id: id, isRequest: isRequest, done: make(chan struct{})}
	// The context exists before the handler starts, so that a $/cancelRequest read right after
	// the request reaches it.
	f.ctx, f.cancel = context.WithCancelCause(c.base)
	c.active[f] = struct{}{}
	if isRequest {
		c.running[id] = f
	}
	return f
}

func (c *Channel) finish(f *inflight) {
	c.mu.Lock()
	f.ended = true
	if f.counted {
		f.counted = false
		c.freePlaceLocked()
	}
	delete(c.active, f)
	if f.isRequest && c.running[f.id] == f {
		delete(c.running, f.id)
	}
	c.mu.Unlock()
	close(f.done)
}

// claim reserves the one response of a request; false when it was already sent.
func (c *Channel) claim(f *inflight) bool {
	c.mu.Lock()
	if f.answered {
		c.mu.Unlock()
		return false
	}
	f.answered = true
	c.mu.Unlock()
	if f.streams != nil { // an output stream ends with the response; an input stream is closed
		c.streams.release(f.streams, &Error{Code: CodeStreamClosed, Message: "stream closed: the request " + f.id.String() + " was answered"})
	}
	return true
}

func (c *Channel) runHandler(f *inflight, h Handler, msg Message) {
	defer c.finish(f)
	defer f.cancel(nil)
	var ctx context.Context = f
	result, err := callHandler(ctx, h, msg.params())
	if !f.isRequest {
		if err != nil { // nobody to answer: the log is the failure's only trace
			c.failures.logFailure(c.name, "notification", msg.Method, err)
		}
		return
	}
	if !c.claim(f) { // already answered (cancelled by shutdown): drop the late result
		var pe *panicError
		if errors.As(err, &pe) { // but not a bug
			c.failures.logFailure(c.name, "request", msg.Method, err)
		}
		return
	}
	if err != nil {
		e, failed := c.failures.wireError(ctx, err)
		if failed { // logged before the answer, so that the log is written when the caller learns of it
			c.failures.logFailure(c.name, "request", msg.Method, err)
		}
		c.sendError(f.id, e)
		return
	}
	c.respond(f.id, result, f.grouped)
}

// cancelRequest handles $/cancelRequest: cancel the handler running the request with that id.
func (c *Channel) cancelRequest(params any) {
	p, ok := params.(map[string]any)
	if !ok {
		return
	}
	id, ok := idOf(p["id"])
	if !ok {
		return
	}
	c.mu.Lock()
	f := c.running[id]
	c.mu.Unlock()
	if f != nil {
		f.cancel(ErrRequestCancelled)
		if f.streams != nil {
			c.streams.cancel(id, ErrRequestCancelled)
		}
	}
}

func (c *Channel) completeRequest(msg Message) {
	c.mu.Lock()
	ch := c.pending[msg.ID]
	delete(c.pending, msg.ID)
	c.mu.Unlock()
	if ch == nil {
		c.log("dropped response with id %s: no pending request", msg.ID)
		return
	}
	c.streams.answered(msg.ID, msg.Error) // before the answer is seen: items first, then the end
	if msg.Kind == KindErrorResponse {
		ch <- outcome{err: msg.Error}
		return
	}
	ch <- outcome{result: Result{value: msg.Result}}
}

// dispatchUndecodable handles a payload that failed to decode (PROTOCOL.md 4.8). When the bytes
// are well-formed and only their content failed, the top level is recovered: an answer naming one
// of our pending requests fails it at once, with nothing sent back (a response is never
// answered); anything else is answered -32700, with a request's id or null.
func (c *Channel) dispatchUndecodable(payload []byte, err error) {
	env, _ := recoverEnvelopeOf(c.codec, payload, err)
	if id, ok := env.answerID(); ok {
		pe := &ProtocolError{Message: fmt.Sprintf("the answer to request %s on the %s channel cannot be decoded: %v", id, c.name, err), cause: err}
		if c.failPending(id, pe) {
			return
		}
	}
	c.sendError(env.requestID(), &Error{Code: CodeParseError, Message: "Parse error: " + err.Error()})
}

// failPending fails the pending request id, and the streams of its call, with err; it reports
// whether such a request was pending.
func (c *Channel) failPending(id ID, err error) bool {
	c.mu.Lock()
	ch := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if ch == nil {
		return false
	}
	c.streams.failCall(id, err) // before the answer is seen, as for a response
	ch <- outcome{err: err}
	return true
}

func (c *Channel) dispatchInvalid(msg Message) {
	if msg.Reply {
		c.sendError(msg.ID, invalidRequestError(msg))
		return
	}
	// An invalid response is never answered; it fails the request it claims to answer (and a
	// stream call's streams with it).
	err := &ProtocolError{Message: "invalid response from the peer: " + msg.Reason}
	if !msg.ID.IsNull() && c.failPending(msg.ID, err) {
		return
	}
	c.log("dropped invalid response: %s", msg.Reason)
}

// refuse makes every request that arrives from now on be answered with e (shutdown).
func (c *Channel) refuse(e *Error) {
	c.mu.Lock()
	c.refusing = e
	c.mu.Unlock()
}
