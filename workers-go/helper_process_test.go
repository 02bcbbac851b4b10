package aspectipc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The process tests re-run this test binary as a real worker (the go-plugin pattern): with
// GO_WANT_HELPER_PROCESS=1, TestMain runs helperWorkerMain instead of the tests. The tests act as a
// minimal parent: they write lines to its stdin, read its stdout, connect to its socket.

func TestMain(m *testing.M) {
	switch os.Getenv("GO_WANT_HELPER_PROCESS") {
	case "1":
		helperWorkerMain()
		return
	case "documented":
		documentedWorkerMain()
		return
	}
	if signal.Ignored(syscall.SIGINT) {
		// Started as a background job: SIGINT is ignored here and children would inherit that,
		// so TestWorkerSignalCleansUp could not interrupt them. A Go handler (this one discards
		// SIGINT, which was ignored anyway) is reset to the default in children at exec.
		signal.Notify(make(chan os.Signal, 1), syscall.SIGINT)
	}
	os.Exit(m.Run())
}

// helperWorkerMain is the worker the process tests talk to.
func helperWorkerMain() {
	if os.Getenv("HELPER_IGNORE_SIGTERM") == "1" {
		signal.Ignore(syscall.SIGTERM)
	}
	say := func(s string) func() { return func() { fmt.Fprintln(os.Stderr, "hook: "+s) } }
	cfg := Config{
		Control: helperHandlers,
		Data:    helperHandlers,
		Hooks: Hooks{
			OnControlReady:  say("control ready"),
			OnDataSetup:     func(string) { say("data setup")() },
			OnDataListening: func(string) { say("data listening")() },
			OnDataConnected: say("data connected"),
			OnDataReady:     say("data ready"),
			OnReady:         say("all ready"),
			OnShuttingDown:  func(r ShutdownReason) { say("shutting down " + string(r))() },
			OnStopped:       say("stopped"),
		},
	}
	if os.Getenv("HELPER_PANIC_HOOK") == "1" { // the SDK logs the panic and goes on
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		cfg.Hooks.OnReady = func() { say("all ready")(); panic("hook failure") }
	}
	if os.Getenv("HELPER_LOG_HANDLER_ERRORS") == "0" {
		off := false
		cfg.LogHandlerErrors = &off
	}
	if names := os.Getenv("HELPER_INLINE"); names != "" { // these methods run Inline
		cfg.HandlerOptions = map[string][]HandlerOption{}
		option := Inline()
		if os.Getenv("HELPER_INLINE_GROUPED") == "1" {
			option = InlineGrouped()
		}
		for _, name := range strings.Split(names, ",") {
			cfg.HandlerOptions[name] = []HandlerOption{option}
		}
	}
	if os.Getenv("HELPER_CODEC_HOOKS") == "panic" { // codec hooks that panic: the SDK fails the message
		enc := func(any) (any, error) { panic("encode hook panic") }
		dec := func(m map[string]any) (any, error) {
			if _, ok := m["boom"]; ok {
				panic("decode hook panic")
			}
			return m, nil
		}
		cfg.ControlCodec = JSONCodec{EncodeHook: enc, DecodeHook: dec}
		cfg.DataCodec = MessagePackCodec{EncodeHook: enc, DecodeHook: dec}
	}
	if ms, err := strconv.Atoi(os.Getenv("HELPER_HELLO_TIMEOUT_MS")); err == nil {
		cfg.HelloTimeout = time.Duration(ms) * time.Millisecond
	}
	if n, err := strconv.Atoi(os.Getenv("HELPER_MAX_HANDLERS")); err == nil {
		cfg.MaxConcurrentHandlers = n
	}
	err := Serve(context.Background(), cfg)
	var startup *StartupError
	if err != nil && !errors.As(err, &startup) { // Serve wrote a start-up refusal itself
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(ExitCode(err))
}

// documentedWorkerMain is the worker of the README, to the letter: Serve, then
// os.Exit(ExitCode(err)), printing nothing of its own.
func documentedWorkerMain() {
	err := Serve(context.Background(), Config{Control: helperHandlers, Data: helperHandlers})
	os.Exit(ExitCode(err))
}

var helperHandlers = HandlerTable{
	"echo": func(_ context.Context, p Params) (any, error) { return p.Value(), nil },
	"sleep": func(ctx context.Context, p Params) (any, error) {
		var args struct {
			Seconds float64 `json:"seconds"`
			Tag     string  `json:"tag"`
		}
		if err := p.Decode(&args); err != nil {
			return nil, err
		}
		select {
		case <-time.After(time.Duration(args.Seconds * float64(time.Second))):
			return "done", nil
		case <-ctx.Done():
			_ = WorkerFrom(ctx).Control().Notify(context.Background(), "cancelObserved", map[string]any{
				"tag": args.Tag, "cause": context.Cause(ctx).Error(),
			})
			return nil, ctx.Err()
		}
	},
	"print": func(_ context.Context, p Params) (any, error) {
		var args struct {
			Text string `json:"text"`
		}
		if err := p.Decode(&args); err != nil {
			return nil, err
		}
		fmt.Println(args.Text)
		return nil, nil
	},
	"callParent": func(ctx context.Context, p Params) (any, error) {
		var args struct {
			Method string `json:"method"`
			Via    string `json:"via"`
		}
		if err := p.Decode(&args); err != nil {
			return nil, err
		}
		ch := WorkerFrom(ctx).Control()
		if args.Via == "data" {
			ch = WorkerFrom(ctx).Data()
		}
		res, err := ch.Request(ctx, args.Method, map[string]any{"from": ChannelFrom(ctx).Name()})
		if err != nil {
			return nil, err
		}
		return res.Value(), nil
	},
	"getEnv": func(_ context.Context, p Params) (any, error) {
		var args struct {
			Name string `json:"name"`
		}
		if err := p.Decode(&args); err != nil {
			return nil, err
		}
		if v, ok := os.LookupEnv(args.Name); ok {
			return v, nil
		}
		return nil, nil
	},
	"childEnv": func(ctx context.Context, _ Params) (any, error) {
		out, err := exec.CommandContext(ctx, "/usr/bin/env").Output()
		return string(out), err
	},
	"repeat": func(_ context.Context, p Params) (any, error) {
		var args struct {
			N int `json:"n"`
		}
		if err := p.Decode(&args); err != nil {
			return nil, err
		}
		return strings.Repeat("x", args.N), nil
	},
	"stop": func(ctx context.Context, _ Params) (any, error) {
		WorkerFrom(ctx).Shutdown()
		return "stopping", nil
	},
	// sleepBusy sleeps ignoring its context: a handler deaf to cancellation.
	"sleepBusy": func(_ context.Context, p Params) (any, error) {
		var args struct {
			Seconds float64 `json:"seconds"`
		}
		if err := p.Decode(&args); err != nil {
			return nil, err
		}
		time.Sleep(time.Duration(args.Seconds * float64(time.Second)))
		return "done", nil
	},
	// spawnChild starts `sleep seconds` in the worker's process group.
	"spawnChild": func(_ context.Context, p Params) (any, error) {
		var args struct {
			Seconds int `json:"seconds"`
		}
		if err := p.Decode(&args); err != nil {
			return nil, err
		}
		cmd := exec.Command("sleep", strconv.Itoa(args.Seconds))
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		go func() { _ = cmd.Wait() }()
		return map[string]any{"pid": cmd.Process.Pid}, nil
	},
	// announceSleep tells the parent on control that it started, then sleeps ignoring its context.
	"announceSleep": func(ctx context.Context, p Params) (any, error) {
		var args struct {
			Seconds float64 `json:"seconds"`
		}
		if err := p.Decode(&args); err != nil {
			return nil, err
		}
		if err := WorkerFrom(ctx).Control().Notify(ctx, "started", nil); err != nil {
			return nil, err
		}
		time.Sleep(time.Duration(args.Seconds * float64(time.Second)))
		return "done", nil
	},
	// complex returns what neither codec can carry, without an encode hook.
	"complex": func(context.Context, Params) (any, error) { return complex(1, 2), nil },
	// askComplex sends the parent what neither codec can carry, and fails with the error it got.
	"askComplex": func(ctx context.Context, _ Params) (any, error) {
		_, err := ChannelFrom(ctx).Request(ctx, "ask", []any{complex(1, 2)})
		return nil, err
	},
	"panic": helperPanic,
	"fail":  func(context.Context, Params) (any, error) { return nil, errors.New("plain failure") },
	"typed": func(context.Context, Params) (any, error) {
		return nil, &Error{Code: 42, Message: "typed failure", Data: map[string]any{"k": "v"}}
	},
	// failBytes fails with text that is not Unicode (PROTOCOL.md 4.10): a plain error, a panic, a
	// typed error whose message holds it, or one whose Data does.
	"failBytes": func(_ context.Context, p Params) (any, error) {
		var args struct {
			Kind string `json:"kind"`
		}
		if err := p.Decode(&args); err != nil {
			return nil, err
		}
		switch args.Kind {
		case "panic":
			panic("bad \xff")
		case "typed":
			return nil, &Error{Code: 42, Message: "bad \xff", Data: map[string]any{"k": "v"}}
		case "data":
			return nil, &Error{Code: 42, Message: "typed failure", Data: "raw \xfe"}
		}
		return nil, errors.New("bad \xff")
	},
	// failBig fails with an error message of n bytes.
	"failBig": func(_ context.Context, p Params) (any, error) {
		var args struct {
			N int `json:"n"`
		}
		if err := p.Decode(&args); err != nil {
			return nil, err
		}
		return nil, &Error{Code: 42, Message: strings.Repeat("e", args.N)}
	},
}

// helperPanic panics with its params' message; a named function, so that tests find its name in
// the traceback.
func helperPanic(_ context.Context, p Params) (any, error) {
	var args struct {
		Message string `json:"message"`
	}
	if err := p.Decode(&args); err != nil {
		return nil, err
	}
	panic(args.Message)
}
