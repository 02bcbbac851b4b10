package aspectipc

import "context"

// StreamHandlerFunc serves a method whose requests may open streams (PROTOCOL.md 13): in is the
// input stream (items the caller sends), out the output stream (items for the caller, before the
// result); either is nil when the request did not open it. The result ends the output stream.
type StreamHandlerFunc func(ctx context.Context, params Params, in *InStream, out *OutStream) (any, error)

// StreamHandler adapts fn to a Handler, registered like any other (Channel.Handle, HandlerTable).
// Any handler's request may open streams; the SDK removes "$/stream" from its params, and a plain
// Handler reaches them with StreamsFrom. A handler that needs a stream the request did not open
// returns MissingStream.
func StreamHandler(fn StreamHandlerFunc) Handler {
	return func(ctx context.Context, params Params) (any, error) {
		in, out := StreamsFrom(ctx)
		return fn(ctx, params, in, out)
	}
}

// StreamsFrom returns the streams the handler's request opened (nil for each one it did not).
func StreamsFrom(ctx context.Context) (*InStream, *OutStream) {
	f := inflightFrom(ctx)
	if f == nil || f.streams == nil {
		return nil, nil
	}
	return f.streams.consumer, f.streams.producer
}

// MissingStream is the error a handler returns when the request did not open a stream it needs:
// dir is "out" or "in" (-32602, PROTOCOL.md 13.1).
func MissingStream(method, dir string) *Error {
	what := "an output stream"
	if dir == "in" {
		what = "an input stream"
	}
	return &Error{Code: CodeInvalidParams, Message: "Invalid params: " + method + " needs " + what + " ($/stream." + dir + ")"}
}

// startWithStreams starts the handler of a request whose params may open streams: an invalid
// descriptor is answered -32602 and one over the limit -32009, without running the handler. A
// request that opens no stream runs inline when its handler does (Inline); one that opens streams
// never does, for its handler waits for items and credit that only the read loop delivers.
func (c *Channel) startWithStreams(msg Message, h Handler, inline bool) {
	clean, open, invalid := parseStreamOpen(msg.Params)
	if open == nil && invalid == "" {
		if inline {
			c.runInline(msg, h)
		} else {
			c.start(msg, h)
		}
		return
	}
	if invalid != "" {
		c.sendError(msg.ID, &Error{Code: CodeInvalidParams, Message: "Invalid params: " + invalid})
		return
	}
	if !c.placeFor(msg.ID) { // before its streams open: an input stream gets credit at once
		return
	}
	r, e := c.streams.acceptFor(msg.ID, open, msg.Method)
	if e != nil {
		c.leavePlace()
		c.sendError(msg.ID, e)
		return
	}
	msg.Params = clean
	c.mu.Lock()
	f := c.startCountedLocked(msg.ID)
	f.streams = r
	r.bind(f)
	c.mu.Unlock()
	startHandler(handlerTask{f: f, h: h, msg: msg})
}

// notifyStream writes a $/stream/* notification; one over the peer's limit is refused as a
// notification ("notification of N bytes exceeds ...", PROTOCOL.md 12.1), which a stream item is.
// It gives up waiting when cancel closes. A stream's step does what needs no waiting whatever its
// ctx says (Send with credit sends), so when cancel was closed before it began, it still takes room
// in the write queue if there is some, and then writes its frame as one without a ctx does: only
// waiting for room would tell it to give up.
func (c *Channel) notifyStream(cancel <-chan struct{}, method string, params map[string]any) error {
	msg := c.rpc.Notification(method, params)
	select {
	case <-cancel:
		return named(c.sendWaiting(cancel, nil, msg), "notification")
	default:
		return named(c.sendOr(cancel, msg), "notification")
	}
}

// failStream answers a request whose stream broke the protocol and cancels its handler, whose
// own outcome is then dropped (PROTOCOL.md 13.5).
func (c *Channel) failStream(id ID, e *Error) {
	c.mu.Lock()
	f := c.running[id]
	c.mu.Unlock()
	if f == nil || f.streams == nil {
		return
	}
	if c.claim(f) {
		c.sendError(id, e)
	}
	f.cancel(e)
}
