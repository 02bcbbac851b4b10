package aspectipc

import "time"

// Handlers run on goroutines that are reused: one that has served a request waits a while for
// the next instead of exiting. A new goroutine starts with a tiny stack that the request path
// (handler, encoding, write) outgrows at once, and growing a stack copies it: for small requests
// that cost more than the rest of the dispatch. A reused goroutine keeps its grown stack.

// handlerTask is one handler to run.
type handlerTask struct {
	f    *inflight
	h    Handler
	msg  Message
	size int // a queued notification's frame size (channel_notify.go)
}

// idleHandlers hands a task to a goroutine waiting for one; it is unbuffered, so a task is never
// left waiting while goroutines are busy.
var idleHandlers = make(chan handlerTask)

// handlerIdleTimeout is how long a goroutine waits for another task before it exits.
const handlerIdleTimeout = 2 * time.Second

// startHandler runs t on an idle goroutine, or on a new one when none is idle.
func startHandler(t handlerTask) {
	select {
	case idleHandlers <- t:
	default:
		go handlerLoop(t)
	}
}

func handlerLoop(t handlerTask) {
	t.f.owner.runHandler(t.f, t.h, t.msg)
	timer := time.NewTimer(handlerIdleTimeout)
	defer timer.Stop()
	for {
		select {
		case t = <-idleHandlers:
			t.f.owner.runHandler(t.f, t.h, t.msg)
			if !timer.Stop() {
				select { // drain a tick that fired while the handler ran
				case <-timer.C:
				default:
				}
			}
			timer.Reset(handlerIdleTimeout)
		case <-timer.C:
			return
		}
	}
}
