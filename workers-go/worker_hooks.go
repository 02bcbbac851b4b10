package aspectipc

import (
	"fmt"
	"log/slog"
)

// Hooks are lifecycle callbacks, all optional. They run synchronously, so what they write to
// stderr is written before the protocol goes on: OnDataReady and OnReady run before the $/hello
// response is sent. They are called in the order listed, each once (OnDataConnected and
// OnDataReady once per data connection). A hook that panics is logged (Config.Logger) and does
// not stop the worker.
type Hooks struct {
	// OnControlReady: the control channel is set up, its handlers are registered.
	OnControlReady func()
	// OnDataSetup: the worker is about to listen on the data path.
	OnDataSetup func(path string)
	// OnDataListening: the data socket is listening (before $/ready is sent).
	OnDataListening func(path string)
	// OnDataConnected: a data connection was accepted (not authenticated yet).
	OnDataConnected func()
	// OnDataReady: a data connection passed $/hello (before the $/hello response is sent).
	OnDataReady func()
	// OnReady: every channel is ready, once: after $/ready without a data channel, after the
	// first successful $/hello with one.
	OnReady func()
	// OnShuttingDown: the worker begins to stop, once, with the reason; new requests are refused
	// from now on. It runs before the in-flight handlers are drained or cancelled.
	OnShuttingDown func(reason ShutdownReason)
	// OnStopped: the channels are closed and the socket file removed, just before Serve returns.
	OnStopped func()
}

// ShutdownReason says why a worker stops; the strings are the same in every SDK.
type ShutdownReason string

// The reasons a worker stops.
const (
	// ReasonShutdownRequest: the parent sent $/shutdown.
	ReasonShutdownRequest ShutdownReason = "shutdown_request"
	// ReasonShutdownCall: the program called Worker.Shutdown, or cancelled the context given to
	// Serve.
	ReasonShutdownCall ShutdownReason = "shutdown_call"
	// ReasonStdinEOF: the control input ended (the parent is gone, or closed it).
	ReasonStdinEOF ShutdownReason = "stdin_eof"
	// ReasonStdoutClosed: the control output broke (a write to it failed).
	ReasonStdoutClosed ShutdownReason = "stdout_closed"
	// ReasonParentExited: the parent process exited (the parent pid changed).
	ReasonParentExited ShutdownReason = "parent_exited"
	// ReasonSignal: SIGTERM or SIGINT.
	ReasonSignal ShutdownReason = "signal"
)

// runHook calls hook, turning a panic into a logged error: a hook is for logging, and a failing
// one must not take the worker down.
func runHook(logger *slog.Logger, name string, hook func()) {
	defer func() {
		if r := recover(); r != nil && logger != nil {
			logger.Error(fmt.Sprintf("hook %s panicked: %v", name, r))
		}
	}()
	hook()
}

// hook runs the named hook when set.
func (w *Worker) hook(name string, f func()) {
	if f != nil {
		runHook(w.cfg.Logger, name, f)
	}
}

// hookPath runs a hook that takes the data path.
func (w *Worker) hookPath(name string, f func(string)) {
	if f != nil {
		runHook(w.cfg.Logger, name, func() { f(w.env.dataPath) })
	}
}

// shuttingDown runs OnShuttingDown with reason, once whatever the reason.
func (w *Worker) shuttingDown(reason ShutdownReason) {
	w.shuttingDownOnce.Do(func() {
		if f := w.cfg.Hooks.OnShuttingDown; f != nil {
			runHook(w.cfg.Logger, "OnShuttingDown", func() { f(reason) })
		}
	})
}
