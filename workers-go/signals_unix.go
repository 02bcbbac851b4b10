//go:build unix

package aspectipc

import (
	"os"
	"os/signal"
	"syscall"
)

// signalWatch delivers SIGTERM and SIGINT to Serve, which then cleans up and returns.
type signalWatch struct {
	ch          chan os.Signal
	watchesTERM bool
}

// notifySignals watches SIGTERM and SIGINT, except those the program ignores (signal.Ignore, or
// SIG_IGN inherited): watching would un-ignore them, and a program that ignores SIGTERM means to
// outlive it (PROTOCOL.md 8.4).
func notifySignals() signalWatch {
	w := signalWatch{ch: make(chan os.Signal, 1)}
	var sigs []os.Signal
	for _, s := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		if !signal.Ignored(s) {
			sigs = append(sigs, s)
			w.watchesTERM = w.watchesTERM || s == syscall.SIGTERM
		}
	}
	if len(sigs) > 0 {
		signal.Notify(w.ch, sigs...)
	}
	return w
}

func (w signalWatch) stop() { signal.Stop(w.ch) }

// pipeSignals receives the SIGPIPEs the runtime would otherwise die of; nobody reads it (signal
// never blocks on a full channel).
var pipeSignals = make(chan os.Signal, 1)

// survivePipeErrors makes a write to a broken stdout or stderr (file descriptors 1 and 2; the
// parent died) fail with EPIPE instead of killing the process with SIGPIPE, as the Go runtime
// does when SIGPIPE is not watched: the worker must live to remove its socket file. A watched
// signal, unlike an ignored one, is reset to the default in the processes the worker starts.
func survivePipeErrors() {
	if !signal.Ignored(syscall.SIGPIPE) {
		signal.Notify(pipeSignals, syscall.SIGPIPE)
	}
}
