package aspectipc

import (
	"context"
	"net"
	"sync"
	"time"
)

// acceptLoop serves each connection to the data path, until the server is closed.
func (w *Worker) acceptLoop() {
	for {
		conn, err := w.server.Accept()
		if err != nil {
			return // the server was closed
		}
		go w.serveConnection(conn)
	}
}

// serveConnection runs one data connection: $/hello first, then ordinary traffic.
func (w *Worker) serveConnection(conn net.Conn) {
	ch, _ := NewChannelBuilder().WithName("data").
		WithTransport(newDataConn(conn)).
		WithFraming(LengthPrefixedFraming{MaxFrameSize: w.env.maxFrameSize}).
		WithCodec(w.cfg.DataCodec).
		WithHandlers(w.cfg.Data).withOptions(w.cfg.HandlerOptions).
		WithMaxConcurrentHandlers(w.cfg.MaxConcurrentHandlers).
		WithLogger(w.cfg.Logger).
		Build()
	ch.worker = w
	ch.failures = w.failurePolicy()
	ch.onClose = func() { w.untrack(ch) }
	ch.preGateLimit = preHelloMaxFrameSize
	ch.reserved = func(msg Message) bool { return w.dataReserved(ch, msg) }
	if !w.track(ch) {
		ch.Close() // shutting down: no new connections
		return
	}
	w.hook("OnDataConnected", w.cfg.Hooks.OnDataConnected)
	var authenticated sync.Once
	authed := make(chan struct{})
	ch.gate = func(ev gateEvent) bool {
		return w.hello(ch, ev, func() { authenticated.Do(func() { close(authed) }) })
	}
	timer := time.AfterFunc(w.cfg.HelloTimeout, func() {
		select {
		case <-authed:
		default:
			w.logf("data connection closed: no $/hello within %s", w.cfg.HelloTimeout)
			ch.Close()
		}
	})
	defer timer.Stop()
	if err := ch.Run(context.Background()); err != nil {
		w.logf("data connection closed: %v", err)
	}
}

func (w *Worker) track(ch *Channel) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopping {
		return false
	}
	w.conns[ch] = struct{}{}
	return true
}

func (w *Worker) untrack(ch *Channel) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.conns, ch)
	if w.data == ch {
		w.data = nil // the next connection may authenticate
	}
}

// channels returns the control channel and every open data connection.
func (w *Worker) channels() []*Channel {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := []*Channel{w.control}
	for ch := range w.conns {
		out = append(out, ch)
	}
	return out
}
