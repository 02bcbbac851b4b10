package aspectipc

import (
	"context"
	"fmt"
)

// Inline handlers. A handler normally runs on a goroutine of its own (handler_pool.go): the read
// loop hands the request over and reads on. For a handler that only computes for a few
// microseconds that hand-over is most of the request's cost, on a small machine mostly in waking
// threads, so a handler marked Inline runs on the read loop itself, as vscode-jsonrpc runs every
// handler on its one thread. Everything else is the normal path: the same inflight (the ctx, the
// shutdown bookkeeping), runHandler (panics, error mapping, failure log, the one response) and
// frame writer. What the read loop cannot do is wait for something only it delivers: the peer's
// responses and stream items, hence the guard in Request and RequestStream.

// Inline makes the handler run on the channel's read loop, in arrival order, instead of on a
// goroutine of its own: for handlers that are short and never block. It saves the hand-over to
// another goroutine, which is most of the cost of a small request. While an inline handler runs,
// nothing else is read on its channel: no other request starts, no response or $/cancelRequest is
// seen. So an inline handler must return quickly, must not sleep, lock for long or do I/O that
// may wait, and must never wait for the peer: Request and RequestStream on its own channel, with
// its ctx, fail at once with an *Error (wrapping ErrInlineWait) rather than hang forever.
//
// Only requests and notifications that open no stream run inline; a request that opens streams
// ("$/stream" in its params) runs on a goroutine as usual, and a notification runs inline only
// when no notification handler is queued or running (notifications keep their arrival order).
// Otherwise an inline handler is like any other: the same ctx (cancelled on shutdown and when the
// channel closes; ChannelFrom and WorkerFrom work), a panic or error answered and logged the same
// way, its response written by the same writer, and shutdown waits for it. The responses of inline
// handlers to the requests one read brought in are written together once the read loop has
// handled them all (frameWriter.hold): one system call for a burst, and one more reason to be
// short, since a slow inline handler also holds up the answers before it in that read.
func Inline() HandlerOption { return func(o *handlerOptions) { o.inline = true } }

// runInline runs h for msg on the read loop (the caller), with the bookkeeping of start. A
// request is not entered in c.running: a $/cancelRequest for it can only be read once it has
// returned, and leaving running alone keeps another request of the same id cancellable. It is in
// c.active, for shutdown and close, which run on other goroutines.
func (c *Channel) runInline(msg Message, h Handler) {
	f := &inflight{owner: c, id: msg.ID, isRequest: msg.Kind == KindRequest, inline: msg.Method, done: make(chan struct{})}
	f.ctx, f.cancel = context.WithCancelCause(c.base)
	c.mu.Lock()
	c.active[f] = struct{}{}
	c.mu.Unlock()
	c.inlineRuns++ // read loop state (Channel.Run): nothing was handed to another goroutine
	c.runHandler(f, h, msg)
}

// inlineWait returns the error of a call from an inline handler that would wait for the peer on
// the channel whose read loop the handler holds: the answer could never be read. nil when ctx is
// not an inline handler's of c.
func (c *Channel) inlineWait(ctx context.Context, call, method string) error {
	f := inflightFrom(ctx)
	if f == nil || f.inline == "" || f.owner != c {
		return nil
	}
	return &Error{
		Code: CodeInternalError,
		Message: fmt.Sprintf("%s %q from the handler of %q on the %s channel: %q runs inline (aspectipc.Inline), "+
			"on the channel's read loop, so it cannot wait for the peer: the answer would never be read; "+
			"remove Inline from the options of %q to call the peer from it",
			call, method, f.inline, c.name, f.inline, f.inline),
		cause: ErrInlineWait,
	}
}
