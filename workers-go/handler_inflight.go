package aspectipc

import (
	"context"
	"time"
)

// inflight is one running handler. It is also the handler's context: the request's cancellable
// context, answering the lookups of ChannelFrom, WorkerFrom and inflightFrom itself, so that a
// request costs one allocation for them rather than one per value.
type inflight struct {
	owner     *Channel
	id        ID
	isRequest bool
	ctx       context.Context
	cancel    context.CancelCauseFunc
	done      chan struct{} // closed once the handler returned and its response was written
	answered  bool          // guarded by Channel.mu: the one response has been claimed
	streams   *streamReq    // the streams the request opened, or nil
	// inline is the method when the handler runs on the read loop (Inline), "" otherwise: what
	// Request checks to refuse a wait that would never end.
	inline  string
	grouped bool // its response is held for the read's others (InlineGrouped)
	// The dispatch bound (channel_bound.go), guarded by owner.mu: bounded for a request handler
	// started with a place, counted while it holds one, ended once it has returned; waits counts
	// its waits for the peer going on.
	bounded, counted, ended bool
	waits                   int
}

type contextKey int

const (
	channelKey contextKey = iota
	inflightKey
	workerKey
)

// ChannelFrom returns the channel a handler's request came in on (nil outside a handler). Use it
// to call or notify the peer from inside a handler.
func ChannelFrom(ctx context.Context) *Channel {
	c, _ := ctx.Value(channelKey).(*Channel)
	return c
}

func inflightFrom(ctx context.Context) *inflight {
	f, _ := ctx.Value(inflightKey).(*inflight)
	return f
}

// Deadline implements context.Context.
func (f *inflight) Deadline() (time.Time, bool) { return f.ctx.Deadline() }

// Done implements context.Context.
func (f *inflight) Done() <-chan struct{} { return f.ctx.Done() }

// Err implements context.Context.
func (f *inflight) Err() error { return f.ctx.Err() }

// Value implements context.Context; other keys (context.Cause's among them) go to the request's
// context.
func (f *inflight) Value(key any) any {
	switch key {
	case channelKey:
		return f.owner
	case inflightKey:
		return f
	case workerKey:
		if f.owner.worker != nil {
			return f.owner.worker
		}
	}
	return f.ctx.Value(key)
}

// runningHandlers returns the handlers running now, except skip.
func (c *Channel) runningHandlers(skip *inflight) []*inflight {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*inflight, 0, len(c.active))
	for f := range c.active {
		if f != skip {
			out = append(out, f)
		}
	}
	return out
}

// cancelHandlers cancels handlers (of any channels) with cause, waits up to grace for them to
// end, and answers CodeRequestCancelled for the requests still running then; their late results
// are dropped, so each request still gets exactly one response.
func cancelHandlers(handlers []*inflight, cause error, grace time.Duration) {
	for _, f := range handlers {
		f.cancel(cause)
	}
	waitHandlers(handlers, grace)
	for _, f := range handlers {
		select {
		case <-f.done:
		default:
			if f.isRequest && f.owner.claim(f) {
				f.owner.sendError(f.id, cancelledError())
			}
		}
	}
}

// waitHandlers waits until every handler is done or timeout expires; it reports whether all are.
func waitHandlers(handlers []*inflight, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for _, f := range handlers {
		select {
		case <-f.done:
		case <-timer.C:
			return false
		}
	}
	return true
}
