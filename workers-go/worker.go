package aspectipc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// Config describes a worker for Serve.
type Config struct {
	// Control holds the methods served on the control channel (stdin/stdout, JSON).
	Control HandlerTable
	// Data holds the methods served on the data channel (Unix socket, MessagePack).
	Data HandlerTable
	// HandlerOptions configures handlers of Control and Data, by method (both channels' handler
	// of that name): {"sumStream": {aspectipc.InputWindow(4)}}. A method that names no handler,
	// or an invalid option, makes Serve fail at once, naming the handler.
	HandlerOptions map[string][]HandlerOption
	// ControlCodec and DataCodec are the channels' codecs, for their EncodeHook and DecodeHook
	// (codec hooks, README); the zero values are the plain codecs.
	ControlCodec JSONCodec
	DataCodec    MessagePackCodec
	// Hooks are called at the steps of the worker's life, for logging.
	Hooks Hooks
	// HelloTimeout bounds the wait for $/hello on a new data connection; 0 means 10 s.
	HelloTimeout time.Duration
	// MaxConcurrentHandlers is how many of the parent's requests each channel runs at once; 0
	// means DefaultMaxConcurrentHandlers (256), a negative value makes Serve fail. With that many
	// running, the channel stops reading until one ends (nothing is dropped). A handler waiting for
	// the parent (the answer to its own Request, on either channel, or its stream's items or
	// credit) does not count meanwhile. Inline and notification handlers are not counted
	// (ChannelBuilder.WithMaxConcurrentHandlers).
	MaxConcurrentHandlers int
	// MaxLineLength is the control channel's line limit, both ways, when the parent does not set
	// ASPECT_IPC_MAX_LINE_LENGTH (which wins, so that both sides use the same one); 0 means
	// DefaultMaxLineLength.
	MaxLineLength int64
	// Logger receives the SDK's diagnostics (dropped messages, closed or refused connections,
	// panicking hooks) and the handler failures. Nil keeps the SDK silent, so that stderr holds
	// only what the program writes, except for the handler failures and the refused data
	// connections (one Warn record each, "data connection refused: <the error's message>", never
	// the token; PROTOCOL.md 7.4): those go to slog.Default() (stderr); and a refusal to start is
	// always written on stderr as one line (Serve), whatever Logger is.
	Logger *slog.Logger
	// LogHandlerErrors says whether each handler failure (a returned error answered
	// CodeHandlerError, a panic with its stack, a failed notification) is logged, as an error
	// record. Nil means true; point it at false to turn the log off. A typed *Error is an answer,
	// not a failure, and is never logged. The stack is logged even when the parent turned
	// sending it off (ASPECT_IPC_TRACEBACKS=0): the log stays on the machine.
	LogHandlerErrors *bool
}

// defaultHelloTimeout is how long a data connection may stay silent before its $/hello.
const defaultHelloTimeout = 10 * time.Second

// defaultShutdownTimeout is how long $/shutdown lets handlers finish when it names no timeout.
const defaultShutdownTimeout = 5 * time.Second

// cancelGrace is how long cancelled handlers get to end on their own (and send their own
// "request cancelled" response) before the worker answers for them.
const cancelGrace = 500 * time.Millisecond

// Worker is the running worker started by Serve. Handlers reach it with WorkerFrom(ctx), to call or
// notify the parent on either channel.
type Worker struct {
	cfg     Config
	env     environment
	control *Channel
	server  *PipeServer

	mu       sync.Mutex
	data     *Channel              // the authenticated data connection, if any
	conns    map[*Channel]struct{} // every open data connection
	stopping bool

	readyOnce        sync.Once
	shuttingDownOnce sync.Once
	finishOnce       sync.Once
	finished         chan struct{}
}

// WorkerFrom returns the worker that runs a handler (nil outside Serve).
func WorkerFrom(ctx context.Context) *Worker {
	w, _ := ctx.Value(workerKey).(*Worker)
	return w
}

// Control returns the control channel.
func (w *Worker) Control() *Channel { return w.control }

// Data returns the authenticated data channel, or nil when none is connected: the worker has no
// data channel (ASPECT_IPC_DATA_PATH is not set), or no parent connection has passed $/hello yet,
// or it closed. Calls on that nil *Channel are safe: Request, Notify and RequestStream fail with
// an *Error with CodeChannelClosed (wrapping ErrChannelClosed) whose message says which of these
// it is when given the handler's ctx, so a handler may return the error as it is.
func (w *Worker) Data() *Channel {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.data
}

// ID returns the worker id given by the parent (ASPECT_IPC_WORKER_ID).
func (w *Worker) ID() string { return w.env.workerID }

// Namespace returns the parent's namespace (ASPECT_IPC_NAMESPACE).
func (w *Worker) Namespace() string { return w.env.namespace }

// DataPath returns the data channel's path, or "" without a data channel.
func (w *Worker) DataPath() string { return w.env.dataPath }

// Serve runs the worker side of the protocol until the worker must stop: it takes stdout over for
// the protocol (the program's own stdout writes go to stderr), serves cfg.Control on stdin/stdout,
// listens on ASPECT_IPC_DATA_PATH when it is set, sends $/ready, authenticates each data
// connection with $/hello and serves cfg.Data on it.
//
// It returns nil after a clean stop, with the socket file removed: a $/shutdown (or
// Worker.Shutdown) once in-flight requests are answered; the end of stdin (the parent is gone);
// SIGTERM or SIGINT (unless the program ignores them); ctx done. Except after $/shutdown it does
// not wait for handlers that ignore their cancelled context. When the parent is gone (the end of
// stdin, a broken stdout, or a new parent pid), a worker that leads its process group (the parent
// starts it so) also ends the other processes of the group: SIGTERM, then SIGKILL 100 ms later.
//
// It returns a *StartupError when the worker cannot start (an invalid environment, a data path in
// use): before returning, it writes the reason on stderr as one line, as every SDK does
// (PROTOCOL.md 5), such as
//
//	aspect-ipc worker: invalid ASPECT_IPC_TRACEBACKS "yes": expected "0" (off) or "1" (on), or unset
//
// so the program need not print it again. Exit with ExitCode(err), which is 2 for it.
//
// Serve watches SIGPIPE (unless it is ignored), so that a write to a closed stdout or stderr fails
// with EPIPE instead of killing the worker before its clean-up; processes it starts get the
// default SIGPIPE back.
func Serve(ctx context.Context, cfg Config) error {
	err := serve(ctx, cfg)
	var startup *StartupError
	if errors.As(err, &startup) {
		reportStartupError(os.Stderr, startup)
	}
	return err
}

// oneLine keeps a start-up refusal on one line of stderr.
var oneLine = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ")

// reportStartupError writes the one line on stderr that PROTOCOL.md 5 asks of a worker that refuses
// to start, in the other SDKs' words ("aspect-ipc worker: " and the reason), in one write. A
// failed write (stderr closed) is ignored: the exit code still says it.
func reportStartupError(stderr io.Writer, err *StartupError) {
	_, _ = io.WriteString(stderr, "aspect-ipc worker: "+oneLine.Replace(err.Message)+"\n")
}

// serve is Serve without the report of a start-up refusal.
func serve(ctx context.Context, cfg Config) error {
	env, err := readEnvironment()
	if err != nil {
		return err
	}
	w := &Worker{cfg: cfg, env: env, conns: map[*Channel]struct{}{}, finished: make(chan struct{})}
	if w.cfg.HelloTimeout <= 0 {
		w.cfg.HelloTimeout = defaultHelloTimeout
	}
	if err := checkHandlers(cfg.Control, cfg.Data); err != nil {
		return &StartupError{Message: err.Error(), cause: err}
	}
	if err := checkHandlerOptions(cfg.HandlerOptions, cfg.Control, cfg.Data); err != nil {
		return &StartupError{Message: err.Error(), cause: err}
	}
	if cfg.MaxConcurrentHandlers != 0 {
		if err := checkMaxConcurrentHandlers(cfg.MaxConcurrentHandlers); err != nil {
			return &StartupError{Message: err.Error(), cause: err}
		}
	}
	w.cfg.MaxConcurrentHandlers = cmp.Or(cfg.MaxConcurrentHandlers, DefaultMaxConcurrentHandlers)
	// A write to a broken stderr (the parent died) must fail with EPIPE rather than kill the
	// worker by SIGPIPE before its clean-up.
	survivePipeErrors()
	lineLimit := cfg.MaxLineLength
	if env.maxLineLength > 0 {
		lineLimit = env.maxLineLength
	}
	out, err := TakeOverStdout()
	if err != nil {
		return &StartupError{Message: err.Error(), cause: err}
	}
	in, err := TakeOverStdin()
	if err != nil {
		return &StartupError{Message: err.Error(), cause: err}
	}
	w.control, _ = NewChannelBuilder().WithName("control").
		WithTransport(StdioTransport(in, out)).
		WithFraming(LineDelimitedFraming{MaxLineLength: lineLimit}).
		WithCodec(cfg.ControlCodec).
		WithHandlers(cfg.Control).withOptions(cfg.HandlerOptions).
		WithMaxConcurrentHandlers(w.cfg.MaxConcurrentHandlers).
		WithLogger(cfg.Logger).
		Build()
	w.control.worker = w
	w.control.failures = w.failurePolicy()
	w.control.reserved = w.controlReserved
	w.hook("OnControlReady", cfg.Hooks.OnControlReady)

	// Watch signals before the socket exists, so that no signal can leave it behind.
	stopSignals := notifySignals()
	defer stopSignals.stop()

	var dataPath any
	if env.dataPath != "" {
		w.hookPath("OnDataSetup", cfg.Hooks.OnDataSetup)
		w.server, err = ListenPipe(env.dataPath)
		if err != nil {
			return &StartupError{Message: err.Error(), cause: err}
		}
		w.hookPath("OnDataListening", cfg.Hooks.OnDataListening)
		dataPath = env.dataPath
	}

	err = w.control.Notify(context.Background(), "$/ready", map[string]any{
		"protocol": ProtocolVersion, "sdk": SDKName, "sdkVersion": SDKVersion,
		"language": SDKLanguage, "pid": os.Getpid(), "dataPath": dataPath,
	})
	if err != nil {
		w.stop(ErrParentLost, ReasonStdoutClosed)
		return &StartupError{Message: "cannot send $/ready: " + err.Error(), cause: err}
	}
	if w.server == nil {
		w.ready()
	} else {
		go w.acceptLoop()
	}
	go func() { _ = w.control.Run(ctx) }()
	watching := make(chan struct{})
	defer close(watching)
	parentGone := watchParent(watching)

	select {
	case <-w.finished: // graceful shutdown completed: its response is written, close stdio too
		w.control.closeWith(ErrShuttingDown)
	case <-w.control.Done(): // stdin ended, or stdout broke: the parent is gone
		reason := ReasonStdinEOF
		if w.control.writeFailed.Load() {
			reason = ReasonStdoutClosed
		}
		w.parentLost(stopSignals, reason)
	case <-parentGone:
		w.parentLost(stopSignals, ReasonParentExited)
	case <-stopSignals.ch:
		w.stop(ErrShuttingDown, ReasonSignal)
	case <-ctx.Done():
		w.stop(ErrShuttingDown, ReasonShutdownCall)
	}
	w.hook("OnStopped", cfg.Hooks.OnStopped)
	return nil
}

// parentLost ends the worker when its parent is gone: at once, and with the processes it started
// (PROTOCOL.md 8.3).
func (w *Worker) parentLost(signals signalWatch, reason ShutdownReason) {
	w.stop(ErrParentLost, reason)
	stopProcessGroup(signals)
}

// checkHandlers rejects handlers registered for reserved "$/" names.
func checkHandlers(sets ...HandlerTable) error {
	for _, hs := range sets {
		for method := range hs {
			if isReserved(method) {
				return reservedError(method)
			}
		}
	}
	return nil
}

func (w *Worker) ready() { w.readyOnce.Do(func() { w.hook("OnReady", w.cfg.Hooks.OnReady) }) }

// stop ends the worker at once: handlers are cancelled with cause, the data connections and
// server closed, the socket file removed. Used when the parent is gone or a signal arrived.
func (w *Worker) stop(cause error, reason ShutdownReason) {
	w.shuttingDown(reason)
	w.mu.Lock()
	w.stopping = true
	w.mu.Unlock()
	for _, ch := range w.channels() {
		ch.closeWith(cause)
	}
	w.finish()
}

// finish closes the data side and removes the socket file, once.
func (w *Worker) finish() {
	w.finishOnce.Do(func() {
		if w.server != nil {
			_ = w.server.Close()
		}
		for _, ch := range w.channels()[1:] {
			ch.closeWith(ErrShuttingDown)
		}
		close(w.finished)
	})
}

func (w *Worker) logf(format string, args ...any) {
	if w.cfg.Logger != nil {
		w.cfg.Logger.Warn(fmt.Sprintf(format, args...))
	}
}

// warnf is logf for what the program's stderr must show even with no Logger (a refused data
// connection, PROTOCOL.md 7.4): nil Logger means slog.Default(), as for the handler failures.
func (w *Worker) warnf(format string, args ...any) {
	logger := w.cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.Warn(fmt.Sprintf(format, args...))
}

// failurePolicy is what the worker's channels do with a failed handler (PROTOCOL.md 4.10): send
// its traceback unless the parent said ASPECT_IPC_TRACEBACKS=0, log it unless the program said
// LogHandlerErrors=false.
func (w *Worker) failurePolicy() failurePolicy {
	p := failurePolicy{noTraceback: w.env.noTracebacks}
	if w.cfg.LogHandlerErrors == nil || *w.cfg.LogHandlerErrors {
		p.log = w.cfg.Logger
		if p.log == nil {
			p.log = slog.Default()
		}
	}
	return p
}
