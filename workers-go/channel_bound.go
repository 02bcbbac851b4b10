package aspectipc

import (
	"context"
	"fmt"
)

// The dispatch bound (PROTOCOL.md 4.5). A channel runs at most maxHandlers of the peer's requests
// at once; when that many run, its read loop waits for one to end before it reads on
// (backpressure: nothing is dropped or reordered). A handler that waits for the peer gives its
// place up meanwhile: for the answer to a request of its own (Request, on either channel), or for
// an item or credit of a stream (Recv, Send, StreamCall.Result). Otherwise handlers that call the
// peer back, whose handlers call back again, would stop both read loops, each waiting for answers
// the other no longer reads, and handlers reading input streams would stop the read loop before
// the items they wait for. Done waiting, a handler takes a place again if one is free, and
// otherwise runs to its end without one: waiting for a place there could wait for handlers that
// wait for it. Inline handlers run on the read loop itself and take no place; notification
// handlers run one at a time, behind a bounded queue of their own (channel_notify.go).

// DefaultMaxConcurrentHandlers is the number of requests a channel runs at once when
// Config.MaxConcurrentHandlers or ChannelBuilder.WithMaxConcurrentHandlers does not say.
const DefaultMaxConcurrentHandlers = 256

// checkMaxConcurrentHandlers refuses a bound below 1 (0 means the default where it is optional).
func checkMaxConcurrentHandlers(n int) error {
	if n < 1 {
		return fmt.Errorf("aspectipc: MaxConcurrentHandlers %d is not at least 1", n)
	}
	return nil
}

// placeFor waits, in the read loop, for a place among the running handlers for request id. False
// when the request must not start: the channel closed meanwhile (nothing can be answered), or it
// began refusing requests (the request is answered so). On true the caller starts the handler with
// startCountedLocked, or gives the place back (leavePlace).
func (c *Channel) placeFor(id ID) bool {
	c.mu.Lock()
	ok := c.placeForLocked(id)
	c.mu.Unlock()
	return ok
}

// placeForLocked is placeFor with c.mu held, which it lets go of while it waits.
func (c *Channel) placeForLocked(id ID) bool {
	for c.counted >= c.maxHandlers {
		c.placeWanted = true
		c.mu.Unlock()
		c.releaseHeld() // the answers held for one write do not wait with the read loop
		select {
		case <-c.placeFreed:
		case <-c.done:
			c.mu.Lock()
			return false
		}
		c.mu.Lock()
		if refusing := c.refusing; refusing != nil { // shutdown began while the read loop waited
			c.mu.Unlock()
			c.sendError(id, refusing)
			c.mu.Lock()
			return false
		}
	}
	c.counted++
	return true
}

// leavePlace gives back a place taken by placeFor for a request that did not start.
func (c *Channel) leavePlace() {
	c.mu.Lock()
	c.freePlaceLocked()
	c.mu.Unlock()
}

// freePlaceLocked gives a place back and wakes the read loop if it waits for one; c.mu is held.
func (c *Channel) freePlaceLocked() {
	c.counted--
	if c.placeWanted {
		c.placeWanted = false
		select {
		case c.placeFreed <- struct{}{}:
		default:
		}
	}
}

// startCountedLocked registers a running request handler that holds the place placeFor took;
// c.mu is held.
func (c *Channel) startCountedLocked(id ID) *inflight {
	f := c.startLocked(id, true)
	f.bounded, f.counted = true, true
	return f
}

// waitingForPeer is called when the handler f (nil outside one: nothing to do) starts waiting for
// the peer; its first wait gives its place up. Each call is paired with a doneWaiting.
func (f *inflight) waitingForPeer() {
	if f == nil || !f.bounded {
		return
	}
	c := f.owner
	c.mu.Lock()
	f.waits++
	if f.waits == 1 && f.counted {
		f.counted = false
		c.freePlaceLocked()
	}
	c.mu.Unlock()
}

// doneWaiting ends a wait of waitingForPeer: once none is left, the handler takes a place again
// if one is free (not after it has ended: a goroutine it started may outlive it with its ctx).
func (f *inflight) doneWaiting() {
	if f == nil || !f.bounded {
		return
	}
	c := f.owner
	c.mu.Lock()
	f.waits--
	if f.waits == 0 && !f.counted && !f.ended && c.counted < c.maxHandlers {
		c.counted++
		f.counted = true
	}
	c.mu.Unlock()
}

// waiterOf returns the handler that waits when ctx does, or else when fallback does (a stream's
// own context): nil when neither is a handler's.
func waiterOf(ctx, fallback context.Context) *inflight {
	if f := inflightFrom(ctx); f != nil {
		return f
	}
	if fallback != nil {
		return inflightFrom(fallback)
	}
	return nil
}

// waitStream waits for wake (a stream's item or credit, or its end), the end of the stream's
// context, or the end of ctx (its cause returned); the handler waiting does not count against the
// dispatch bound meanwhile.
func waitStream(ctx, stream context.Context, wake chan struct{}) error {
	waiter := waiterOf(ctx, stream)
	waiter.waitingForPeer()
	defer waiter.doneWaiting()
	select {
	case <-wake:
	case <-stream.Done():
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	return nil
}
