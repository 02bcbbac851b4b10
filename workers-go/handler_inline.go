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

// inlineRequestLimit is the largest request frame an Inline handler runs on the read loop for.
// Past it the hand-over to a goroutine costs little beside the bytes themselves, and the read
// loop, free again, reads the next request while this one's response is written: a Go worker's
// echo of 1 MiB with 8 in flight went from 2,355 to 3,188 MB/s (median of 6 interleaved rounds).
const inlineRequestLimit = 64 * 1024

// Inline makes the handler run on the channel's read loop, in arrival order, instead of on a
// goroutine of its own: for handlers that are short and never block. It saves the hand-over to
// another goroutine, which is most of the cost of a small request. While an inline handler runs,
// nothing else is read on its channel: no other request starts, no response or $/cancelRequest is
// seen. So an inline handler must return quickly, must not sleep, lock for long or do I/O that
// may wait, and must never wait for the peer: Request and RequestStream on its own channel, with
// its ctx, fail at once with an *Error (wrapping ErrInlineWait) rather than hang forever.
//
// Only requests and notifications that open no stream run inline; a request that opens streams
// ("$/stream" in its params), or whose frame is over 64 KiB, runs on a goroutine as usual, and a
// notification runs inline only when no notification handler is queued or running
// (notifications keep their arrival order).
// Otherwise an inline handler is like any other: the same ctx (cancelled on shutdown and when the
// channel closes; ChannelFrom and WorkerFrom work), a panic or error answered and logged the same
// way, its response written by the same writer, and shutdown waits for it.
func Inline() HandlerOption { return func(o *handlerOptions) { o.inline = true } }

// InlineGrouped is Inline, and the handler's responses to the requests that one read brought in
// are written together, in one system call, once the read loop has handled them all
// (frameWriter.hold), instead of one write each. It saves the worker CPU (7.1 -> 5.4 us a request
// with 64 in flight from a Python parent) where CPU is short (many workers on few cores), and costs
// throughput where it is not: the parent gets a burst's first answer only once the burst is
// handled, so the two sides overlap less (on 2 idle CPUs, 64 in flight: 118,000 requests/s
// without, 88,000 with). A slow grouped handler also holds up the answers before it in its read.
func InlineGrouped() HandlerOption {
	return func(o *handlerOptions) { o.inline, o.grouped = true, true }
}

// runInline runs h for msg on the read loop (the caller), with the bookkeeping of start. A
// request is not entered in c.running: a $/cancelRequest for it can only be read once it has
// returned, and leaving running alone keeps another request of the same id cancellable. It is in
// c.active, for shutdown and close, which run on other goroutines.
func (c *Channel) runInline(msg Message, h Handler) {
	f := &inflight{owner: c, id: msg.ID, isRequest: msg.Kind == KindRequest, inline: msg.Method, done: make(chan struct{})}
	f.ctx, f.cancel = context.WithCancelCause(c.base)
	c.mu.Lock()
	f.grouped = c.grouped[msg.Method]
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
