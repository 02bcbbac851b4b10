package aspectipc

import (
	"context"
	"math"
	"time"
)

// handleShutdown serves $/shutdown (PROTOCOL.md 8.1): refuse new requests, let in-flight handlers
// finish for up to params.timeout seconds (default 5), cancel the rest, answer null, and once that
// answer is written, close the data side, remove the socket file and let Serve return.
func (w *Worker) handleShutdown(ctx context.Context, params Params) (any, error) {
	var p struct {
		Timeout *float64 `json:"timeout"`
	}
	if err := params.Decode(&p); err != nil {
		return nil, err
	}
	timeout := defaultShutdownTimeout
	if p.Timeout != nil && *p.Timeout >= 0 && !math.IsInf(*p.Timeout, 0) {
		timeout = time.Duration(*p.Timeout * float64(time.Second))
	}
	self := inflightFrom(ctx)
	w.drain(timeout, self)
	go func() {
		<-self.done // our null response has been written
		w.finish()
	}()
	return nil, nil
}

// Shutdown stops the worker gracefully, like $/shutdown with the default timeout: new requests
// are refused with CodeShuttingDown, in-flight ones (including the caller's, when called from a
// handler) get up to 5 s to finish and be answered, then the data side is closed, the socket file
// removed and Serve returns nil. It returns at once; calling it again does nothing.
func (w *Worker) Shutdown() {
	go func() {
		w.drain(defaultShutdownTimeout, nil)
		w.finish()
	}()
}

// drain runs steps 1 and 2 of the shutdown, once: refuse new requests on every channel, wait up to
// timeout for the running handlers other than self, then cancel those left.
func (w *Worker) drain(timeout time.Duration, self *inflight) {
	w.mu.Lock()
	already := w.stopping
	w.stopping = true
	w.mu.Unlock()
	if already {
		return
	}
	call(w.cfg.Hooks.OnShutdown)
	refusal := &Error{Code: CodeShuttingDown, Message: "shutting down", cause: ErrShuttingDown}
	var running []*inflight
	for _, ch := range w.channels() {
		ch.refuse(refusal)
		running = append(running, ch.runningHandlers(self)...)
	}
	if !waitHandlers(running, timeout) {
		cancelHandlers(running, ErrShuttingDown, cancelGrace)
	}
}
