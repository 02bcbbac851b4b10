//go:build unix

package aspectipc

import (
	"os"
	"os/signal"
	"syscall"
)

// signalWatch delivers SIGTERM and SIGINT to Serve, which then cleans up and returns.
type signalWatch struct{ ch chan os.Signal }

// notifySignals watches SIGTERM and SIGINT, except those the program ignores (signal.Ignore, or
// SIG_IGN inherited): watching would un-ignore them, and a program that ignores SIGTERM means to
// outlive it (PROTOCOL.md 8.4).
func notifySignals() signalWatch {
	w := signalWatch{ch: make(chan os.Signal, 1)}
	var sigs []os.Signal
	for _, s := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		if !signal.Ignored(s) {
			sigs = append(sigs, s)
		}
	}
	if len(sigs) > 0 {
		signal.Notify(w.ch, sigs...)
	}
	return w
}

func (w signalWatch) stop() { signal.Stop(w.ch) }
