package aspectipc

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/assign"
)

// controlReserved handles $/shutdown on the control channel (PROTOCOL.md 8.1): it checks the
// params and, from this moment (in the read loop, before any later message is read), refuses new
// requests on both channels; the rest of the shutdown runs on a goroutine. As a notification it
// shuts down the same way (with the default timeout if the params are invalid) without answering.
func (w *Worker) controlReserved(msg Message) bool {
	if msg.Method != "$/shutdown" {
		return false
	}
	timeout, perr := shutdownTimeout(msg)
	if perr != nil {
		if msg.Kind == KindRequest {
			w.control.sendError(msg.ID, perr) // and no shutdown
			return true
		}
		timeout = defaultShutdownTimeout
	}
	if !w.beginShutdown(ReasonShutdownRequest) {
		if msg.Kind == KindRequest {
			w.control.sendError(msg.ID, shuttingDownError())
		}
		return true
	}
	w.control.startReserved(msg, func(ctx context.Context, _ Params) (any, error) {
		self := inflightFrom(ctx)
		w.drain(timeout, self)
		go func() {
			<-self.done // our null response (if a request) has been written
			w.finish()
		}()
		return nil, nil
	})
	return true
}

// dataReserved answers the reserved requests that have no business on an authenticated data
// connection: $/shutdown (a control-channel method) and a second $/hello (decideHello). A
// notification of either is ignored.
func (w *Worker) dataReserved(ch *Channel, msg Message) bool {
	switch msg.Method {
	case "$/shutdown":
		if msg.Kind == KindRequest {
			ch.sendError(msg.ID, &Error{Code: CodeMethodNotFound, Message: "$/shutdown is a control-channel method"})
		}
		return true
	case "$/hello":
		if v := decideHello(helloInput{msg: msg, later: true}); !v.silent {
			ch.sendError(v.id, v.err)
		}
		return true
	}
	return false
}

// shutdownTimeout reads the params of $/shutdown: absent, {} or {"timeout": t}, where t is absent
// or null (the default, 5 s) or a finite number of seconds >= 0. Anything else is -32602.
func shutdownTimeout(msg Message) (time.Duration, *Error) {
	if !msg.HasParams {
		return defaultShutdownTimeout, nil
	}
	p, ok := msg.Params.(map[string]any)
	if !ok {
		return 0, &Error{Code: CodeInvalidParams, Message: `Invalid params: $/shutdown params must be a map {"timeout": seconds}, not an array`}
	}
	raw, has := p["timeout"]
	if !has || raw == nil {
		return defaultShutdownTimeout, nil
	}
	var seconds float64
	switch x := raw.(type) {
	case int64:
		seconds = float64(x)
	case uint64:
		seconds = float64(x)
	case float64:
		seconds = x
	default:
		return 0, &Error{Code: CodeInvalidParams, Message: fmt.Sprintf("Invalid params: timeout must be a number of seconds >= 0 or null, not %s", assign.KindName(raw))}
	}
	if math.IsNaN(seconds) || math.IsInf(seconds, 0) || seconds < 0 {
		return 0, &Error{Code: CodeInvalidParams, Message: fmt.Sprintf("Invalid params: timeout must be a finite number of seconds >= 0 or null, not %v", seconds)}
	}
	if ns := seconds * float64(time.Second); ns < float64(math.MaxInt64) {
		return time.Duration(ns), nil
	}
	return time.Duration(math.MaxInt64), nil
}

func shuttingDownError() *Error {
	return &Error{Code: CodeShuttingDown, Message: "shutting down", cause: ErrShuttingDown}
}

// Shutdown stops the worker gracefully, like $/shutdown with the default timeout: new requests
// are refused with CodeShuttingDown, in-flight ones (including the caller's, when called from a
// handler) get up to 5 s to finish and be answered, then the data side is closed, the socket file
// removed and Serve returns nil. It returns at once; calling it again does nothing.
func (w *Worker) Shutdown() {
	if !w.beginShutdown(ReasonShutdownCall) {
		return
	}
	go func() {
		w.drain(defaultShutdownTimeout, nil)
		w.finish()
	}()
}

// beginShutdown runs step 1 of the shutdown, once: refuse new requests on every channel. It
// returns false when the worker is already stopping.
func (w *Worker) beginShutdown(reason ShutdownReason) bool {
	w.mu.Lock()
	already := w.stopping
	w.stopping = true
	w.mu.Unlock()
	if already {
		return false
	}
	w.shuttingDown(reason)
	for _, ch := range w.channels() {
		ch.refuse(shuttingDownError())
	}
	return true
}

// drain runs steps 2 and 3: wait up to timeout for the running handlers other than self, then
// cancel those left and answer them (PROTOCOL.md 8.1).
func (w *Worker) drain(timeout time.Duration, self *inflight) {
	var running []*inflight
	for _, ch := range w.channels() {
		running = append(running, ch.runningHandlers(self)...)
	}
	if !waitHandlers(running, timeout) {
		cancelHandlers(running, ErrShuttingDown, cancelGrace)
	}
	for _, ch := range w.channels() { // an inline handler's response may be held (Channel.hold)
		ch.releaseHeld()
	}
}
