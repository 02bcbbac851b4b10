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
	err := aspectipc.Serve(context.Background(), aspectipc.Config{Control: methods, Data: methods})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(aspectipc.ExitCode(err))
}

// methods are registered on both channels.
var methods = aspectipc.Handlers{
	"echo":          echo,
	"add":           add,
	"sleep":         sleep,
	"fail":          fail,
	"crash":         crash,
	"callParent":    callParent,
	"notifyParent":  notifyParent,
	"print":         printText,
	"stderr":        stderrText,
	"getEnv":        getEnv,
	"childEnv":      childEnv,
	"freeze":        freeze,
	"info":          info,
	"processItems":  processItems,
	"processMatrix": processMatrix,
}

func echo(_ context.Context, p aspectipc.Params) (any, error) { return p.Value(), nil }

func add(_ context.Context, p aspectipc.Params) (any, error) {
	var args struct {
		A int64 `json:"a"`
		B int64 `json:"b"`
	}
	if err := p.Decode(&args); err != nil {
		return nil, err
	}
	return args.A + args.B, nil
}

func sleep(ctx context.Context, p aspectipc.Params) (any, error) {
	var args struct {
		Seconds float64 `json:"seconds"`
		Tag     string  `json:"tag"`
	}
	if err := p.Decode(&args); err != nil {
		return nil, err
	}
	timer := time.NewTimer(time.Duration(args.Seconds * float64(time.Second)))
	defer timer.Stop()
	select {
	case <-timer.C:
		return "done", nil
	case <-ctx.Done():
		control := aspectipc.WorkerFrom(ctx).Control()
		_ = control.Notify("cancelObserved", map[string]any{"tag": args.Tag})
		return nil, ctx.Err()
	}
}

func fail(_ context.Context, p aspectipc.Params) (any, error) {
	args, _ := p.Value().(map[string]any)
	message, _ := args["message"].(string)
	code, hasCode := args["code"]
	if !hasCode {
		return nil, errors.New(message)
	}
	n, ok := code.(int64)
	if !ok {
		return nil, &aspectipc.Error{Code: aspectipc.CodeInvalidParams, Message: "fail: code must be an integer"}
	}
	return nil, &aspectipc.Error{Code: int(n), Message: message, Data: args["data"]}
}

func crash(_ context.Context, p aspectipc.Params) (any, error) {
	var args struct {
		Code int `json:"code"`
	}
	if err := p.Decode(&args); err != nil {
		return nil, err
	}
	os.Exit(args.Code)
	return nil, nil
}

// peerCall holds the params of callParent and notifyParent.
type peerCall struct {
	method string
	params any
	via    *aspectipc.Channel
}

func parsePeerCall(ctx context.Context, p aspectipc.Params) (peerCall, error) {
	args, _ := p.Value().(map[string]any)
	method, _ := args["method"].(string)
	via, _ := args["via"].(string)
	w := aspectipc.WorkerFrom(ctx)
	call := peerCall{method: method, params: args["params"]}
	switch via {
	case "control":
		call.via = w.Control()
	case "data":
		call.via = w.Data()
		if call.via == nil {
			return call, errors.New("no data channel is connected")
		}
	default:
		return call, &aspectipc.Error{Code: aspectipc.CodeInvalidParams, Message: `via must be "control" or "data"`}
	}
	return call, nil
}

func callParent(ctx context.Context, p aspectipc.Params) (any, error) {
	call, err := parsePeerCall(ctx, p)
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
	call, err := parsePeerCall(ctx, p)
	if err != nil {
		return nil, err
	}
	return nil, call.via.Notify(call.method, call.params)
}

type textParams struct {
	Text string `json:"text"`
}

func printText(_ context.Context, p aspectipc.Params) (any, error) {
	var args textParams
	if err := p.Decode(&args); err != nil {
		return nil, err
	}
	fmt.Println(args.Text) // the SDK routes this to stderr
	return nil, nil
}

func stderrText(_ context.Context, p aspectipc.Params) (any, error) {
	var args textParams
	if err := p.Decode(&args); err != nil {
		return nil, err
	}
	fmt.Fprintln(os.Stderr, args.Text)
	return nil, nil
}

type nameParams struct {
	Name string `json:"name"`
}

func getEnv(_ context.Context, p aspectipc.Params) (any, error) {
	var args nameParams
	if err := p.Decode(&args); err != nil {
		return nil, err
	}
	if v, ok := os.LookupEnv(args.Name); ok {
		return v, nil
	}
	return nil, nil
}

func childEnv(ctx context.Context, p aspectipc.Params) (any, error) {
	var args nameParams
	if err := p.Decode(&args); err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, "/usr/bin/env").Output()
	if err != nil {
		return nil, err
	}
	scanner := bufio.NewScanner(bytes.NewReader(out))
	for scanner.Scan() {
		if v, ok := strings.CutPrefix(scanner.Text(), args.Name+"="); ok {
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

func processItems(_ context.Context, p aspectipc.Params) (any, error) {
	var args struct {
		Items []struct {
			Value float64 `json:"value"`
		} `json:"items"`
	}
	if err := p.Decode(&args); err != nil {
		return nil, err
	}
	sum := 0.0
	for _, item := range args.Items { // in order: every language must return the same bits
		sum += item.Value
	}
	return map[string]any{"processed": len(args.Items), "sum": sum}, nil
}

func processMatrix(_ context.Context, p aspectipc.Params) (any, error) {
	var args struct {
		Matrix [][]float64 `json:"matrix"`
	}
	if err := p.Decode(&args); err != nil {
		return nil, err
	}
	rows, columns := len(args.Matrix), 0
	if rows > 0 {
		columns = len(args.Matrix[0])
	}
	if rows*columns == 0 {
		return nil, &aspectipc.Error{Code: aspectipc.CodeInvalidParams, Message: "Invalid params: matrix is empty"}
	}
	sum := 0.0
	for _, row := range args.Matrix { // row by row, in order
		for _, v := range row {
			sum += v
		}
	}
	return map[string]any{"sum": sum, "avg": sum / float64(rows*columns)}, nil
}
