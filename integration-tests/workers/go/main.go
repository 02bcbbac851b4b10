// Command test-worker is the Go test worker of the integration suite: the methods and switches of
// integration-tests/WORKERS.md, built only from the public API of the Go SDK.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	aspectipc "github.com/aspect-ipc/aspect-ipc/workers-go"
)

func main() {
	if os.Getenv("TEST_IGNORE_SIGTERM") == "1" {
		signal.Ignore(syscall.SIGTERM)
	}
	if junk, ok := os.LookupEnv("TEST_JUNK_STDOUT"); ok {
		os.Stdout.WriteString(junk + "\n") // straight to fd 1, before the SDK takes it over
	}
	if code, ok := os.LookupEnv("TEST_EXIT_BEFORE_READY"); ok {
		fmt.Fprintln(os.Stderr, "exiting early")
		n, _ := strconv.Atoi(code)
		os.Exit(n)
	}
	if os.Getenv("TEST_NO_READY") == "1" {
		fmt.Fprintln(os.Stderr, "not starting")
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	err := aspectipc.Serve(context.Background(), aspectipc.Config{
		Control: methods, Data: dataMethods(), DataCodec: dataCodec, HandlerOptions: inline,
	})
	var startup *aspectipc.StartupError
	if err != nil && !errors.As(err, &startup) { // Serve wrote a start-up refusal on stderr itself
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(aspectipc.ExitCode(err))
}

// methods are registered on both channels.
var methods = aspectipc.HandlerTable{
	"echo":          echo,
	"add":           add,
	"sleep":         sleep,
	"fail":          fail,
	"panic":         panicWith,
	"crash":         crash,
	"callParent":    callParent,
	"notifyParent":  notifyParent,
	"print":         printText,
	"childPrint":    childPrint,
	"childStdin":    childStdin,
	"stderr":        stderrText,
	"getEnv":        getEnv,
	"childEnv":      childEnv,
	"freeze":        freeze,
	"info":          info,
	"processItems":  processItems,
	"processMatrix": processMatrix,
	"spin":          spin,
	"spawnChild":    spawnChild,
	"sleepBusy":     sleepBusy,
	"sleepStubborn": sleepBusy, // a goroutine blocks, not the worker: the same in Go
	"note":          note,
	"notes":         notes,
	"countTo":       aspectipc.StreamHandler(countTo),
	"sumStream":     aspectipc.StreamHandler(sumStream),
	"echoStream":    aspectipc.StreamHandler(echoStream),
}

// inline are the methods that only compute for a moment and never block, log or call the parent:
// they run on the read loop of their channel (aspectipc.Inline), which saves a hand-over to another
// goroutine per request. Not fail and panic (they log), nor anything that sleeps, waits or does I/O.
var inline = map[string][]aspectipc.HandlerOption{
	"echo": {aspectipc.Inline()}, "add": {aspectipc.Inline()}, "info": {aspectipc.Inline()},
	"getEnv": {aspectipc.Inline()}, "notes": {aspectipc.Inline()},
}

func echo(_ context.Context, p aspectipc.Params) (any, error) { return p.Value(), nil }

// add adds two numbers: exactly when both are integers (the sum must fit an int64, never
// wrapped), in float64 when either is a float.
func add(_ context.Context, p aspectipc.Params) (any, error) {
	args, err := paramsOf("add", p)
	if err != nil {
		return nil, err
	}
	a, err := args.number("a")
	if err != nil {
		return nil, err
	}
	b, err := args.number("b")
	if err != nil {
		return nil, err
	}
	x, xInt := bigOf(a)
	y, yInt := bigOf(b)
	if !xInt || !yInt {
		fa, _ := args.float("a")
		fb, _ := args.float("b")
		return fa + fb, nil
	}
	sum := new(big.Int).Add(x, y)
	if !sum.IsInt64() {
		return nil, &aspectipc.Error{Code: aspectipc.CodeInvalidParams, Message: "Invalid params: add: integer overflow: a + b is outside [-2^63, 2^63 - 1]"}
	}
	return sum.Int64(), nil
}

func bigOf(v any) (*big.Int, bool) {
	switch x := v.(type) {
	case int64:
		return big.NewInt(x), true
	case uint64:
		return new(big.Int).SetUint64(x), true
	}
	return nil, false
}

func sleep(ctx context.Context, p aspectipc.Params) (any, error) {
	args, err := paramsOf("sleep", p)
	if err != nil {
		return nil, err
	}
	seconds, err := args.float("seconds")
	if err != nil {
		return nil, err
	}
	tag, err := args.optionalStr("tag")
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(duration(seconds))
	defer timer.Stop()
	select {
	case <-timer.C:
		return "done", nil
	case <-ctx.Done():
		control := aspectipc.WorkerFrom(ctx).Control()
		_ = control.Notify(context.Background(), "cancelObserved", map[string]any{"tag": tag})
		return nil, ctx.Err()
	}
}

func fail(_ context.Context, p aspectipc.Params) (any, error) {
	args, err := paramsOf("fail", p)
	if err != nil {
		return nil, err
	}
	message, err := args.str("message")
	if err != nil {
		return nil, err
	}
	if args.m["notUnicode"] == true {
		message += " \xff" // not UTF-8: the SDK sends it as U+FFFD (PROTOCOL.md 4.10)
	}
	if _, hasCode := args.m["code"]; !hasCode {
		return nil, errors.New(message)
	}
	code, err := args.integer("code")
	if err != nil {
		return nil, err
	}
	return nil, &aspectipc.Error{Code: int(code), Message: message, Data: args.m["data"]}
}

// panicWith panics with the message (Go only): the SDK answers -32000 with the panic's
// traceback (PROTOCOL.md 4.10) and goes on serving.
func panicWith(_ context.Context, p aspectipc.Params) (any, error) {
	args, err := paramsOf("panic", p)
	if err != nil {
		return nil, err
	}
	message, err := args.str("message")
	if err != nil {
		return nil, err
	}
	panic(message)
}

func crash(_ context.Context, p aspectipc.Params) (any, error) {
	args, err := paramsOf("crash", p)
	if err != nil {
		return nil, err
	}
	code, err := args.integer("code")
	if err != nil {
		return nil, err
	}
	os.Exit(int(code))
	return nil, nil
}

// peerCall holds the params of callParent and notifyParent.
type peerCall struct {
	method string
	params any
	via    *aspectipc.Channel
}

func parsePeerCall(ctx context.Context, name string, p aspectipc.Params) (peerCall, error) {
	args, err := paramsOf(name, p)
	if err != nil {
		return peerCall{}, err
	}
	method, err := args.str("method")
	if err != nil {
		return peerCall{}, err
	}
	via, err := args.str("via")
	if err != nil {
		return peerCall{}, err
	}
	w := aspectipc.WorkerFrom(ctx)
	call := peerCall{method: method, params: args.m["params"]}
	switch via {
	case "control":
		call.via = w.Control()
	case "data":
		call.via = w.Data()
		if call.via == nil {
			return call, errors.New("no data channel is connected")
		}
	default:
		return call, args.invalid("via", `"control" or "data"`)
	}
	return call, nil
}

func callParent(ctx context.Context, p aspectipc.Params) (any, error) {
	call, err := parsePeerCall(ctx, "callParent", p)
	if err != nil {
		return nil, err
	}
	result, err := call.via.Request(ctx, call.method, call.params)
	if err != nil {
		return nil, err
	}
	return result.Value(), nil
}

func notifyParent(ctx context.Context, p aspectipc.Params) (any, error) {
	call, err := parsePeerCall(ctx, "notifyParent", p)
	if err != nil {
		return nil, err
	}
	return nil, call.via.Notify(ctx, call.method, call.params)
}

func printText(_ context.Context, p aspectipc.Params) (any, error) {
	text, err := stringParam("print", "text", p)
	if err != nil {
		return nil, err
	}
	fmt.Println(text) // the SDK routes this to stderr
	return nil, nil
}

// childPrint starts a child process that inherits the worker's stdout and writes text to it,
// with no newline, and waits for it.
func childPrint(ctx context.Context, p aspectipc.Params) (any, error) {
	text, err := stringParam("childPrint", "text", p)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "printf", "%s", text)
	cmd.Stdout = os.Stdout // descriptor 1, which the SDK pointed at stderr
	return nil, cmd.Run()
}

// childStdin runs argv as a child process that inherits the worker's stdin and returns its stdout.
func childStdin(ctx context.Context, p aspectipc.Params) (any, error) {
	if err := require("childStdin", "argv", "a non-empty array of strings", p); err != nil {
		return nil, err
	}
	var args struct {
		Argv []string `json:"argv"`
	}
	if err := p.Decode(&args); err != nil {
		return nil, err
	}
	if len(args.Argv) == 0 {
		return nil, invalidParams("childStdin: 'argv' must be a non-empty array of strings")
	}
	cmd := exec.CommandContext(ctx, args.Argv[0], args.Argv[1:]...)
	cmd.Stdin = os.Stdin // descriptor 0, which the SDK pointed at /dev/null
	out, err := cmd.Output()
	return string(out), err
}

func stderrText(_ context.Context, p aspectipc.Params) (any, error) {
	text, err := stringParam("stderr", "text", p)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(os.Stderr, text)
	return nil, nil
}

func getEnv(_ context.Context, p aspectipc.Params) (any, error) {
	name, err := stringParam("getEnv", "name", p)
	if err != nil {
		return nil, err
	}
	if v, ok := os.LookupEnv(name); ok {
		return v, nil
	}
	return nil, nil
}

func childEnv(ctx context.Context, p aspectipc.Params) (any, error) {
	name, err := stringParam("childEnv", "name", p)
	if err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, "/usr/bin/env").Output()
	if err != nil {
		return nil, err
	}
	scanner := bufio.NewScanner(bytes.NewReader(out))
	for scanner.Scan() {
		if v, ok := strings.CutPrefix(scanner.Text(), name+"="); ok {
			return v, nil
		}
	}
	return nil, nil
}

// freeze replaces the process image with sleep: same pid, same open descriptors (both channels
// stay open but nobody reads or answers them), SIGTERM still ignored if it was.
func freeze(_ context.Context, _ aspectipc.Params) (any, error) {
	// Go opens descriptors close-on-exec; clear the flag so the channels survive the exec.
	for fd := 0; fd < 1024; fd++ {
		_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, 0)
	}
	sleepPath, err := exec.LookPath("sleep")
	if err != nil {
		return nil, err
	}
	err = syscall.Exec(sleepPath, []string{"sleep", "3600"}, os.Environ())
	return nil, fmt.Errorf("freeze: exec %s: %w", sleepPath, err)
}

func info(_ context.Context, _ aspectipc.Params) (any, error) {
	return map[string]any{"language": "go", "pid": os.Getpid()}, nil
}

// spin keeps a CPU busy for microseconds, deaf to cancellation.
func spin(_ context.Context, p aspectipc.Params) (any, error) {
	args, err := paramsOf("spin", p)
	if err != nil {
		return nil, err
	}
	microseconds, err := args.integer("microseconds")
	if err != nil {
		return nil, err
	}
	end := time.Now().Add(time.Duration(microseconds) * time.Microsecond)
	for time.Now().Before(end) {
	}
	return map[string]any{"pid": os.Getpid()}, nil
}

// spawnChild starts `sleep seconds` in the worker's own process group (the child is not put in a
// group of its own), and reaps it when it ends.
func spawnChild(_ context.Context, p aspectipc.Params) (any, error) {
	args, err := paramsOf("spawnChild", p)
	if err != nil {
		return nil, err
	}
	seconds, err := args.number("seconds")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("sleep", fmt.Sprint(seconds))
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait() }()
	return map[string]any{"pid": cmd.Process.Pid}, nil
}

// sleepBusy sleeps without looking at its context: a handler that ignores cancellation.
func sleepBusy(_ context.Context, p aspectipc.Params) (any, error) {
	args, err := paramsOf("sleepBusy", p)
	if err != nil {
		return nil, err
	}
	seconds, err := args.float("seconds")
	if err != nil {
		return nil, err
	}
	time.Sleep(duration(seconds))
	return "done", nil
}
