// Command dual-channel-worker is the worker of the dual-channel example, in Go: status and
// configuration on the control channel (stdio, JSON), bulk processing on the data channel (Unix
// socket, MessagePack). Its log lines go to stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	aspectipc "github.com/aspect-ipc/aspect-ipc/workers-go"
)

var started = time.Now()

func logLine(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func main() {
	logLine("Worker: Starting...")
	logLine("Worker: Setting up control channel (stdio)...")
	err := aspectipc.Serve(context.Background(), aspectipc.Config{
		Control: aspectipc.HandlerTable{
			"getStatus": getStatus,
			"getConfig": getConfig,
			"shutdown":  shutdown,
		},
		Data: aspectipc.HandlerTable{
			"processItems":  processItems,
			"processMatrix": processMatrix,
		},
		Hooks: aspectipc.Hooks{
			OnControlReady:  func() { logLine("Worker: Control channel ready") },
			OnDataSetup:     func(path string) { logLine("Worker: Setting up data channel at %s...", path) },
			OnDataListening: func(string) { logLine("Worker: Data channel listening") },
			OnDataConnected: func() { logLine("Worker: Data channel client connected") },
			OnDataReady:     func() { logLine("Worker: Data channel ready") },
			OnReady:         func() { logLine("Worker: All channels ready") },
		},
	})
	var startup *aspectipc.StartupError
	if err != nil && !errors.As(err, &startup) { // a refusal to start: Serve has said why
		logLine("Worker: %v", err)
	}
	os.Exit(aspectipc.ExitCode(err))
}

func getStatus(context.Context, aspectipc.Params) (any, error) {
	return map[string]any{"status": "running", "uptime": time.Since(started).Milliseconds()}, nil
}

func getConfig(context.Context, aspectipc.Params) (any, error) {
	return map[string]any{
		"version":  "1.0.0",
		"features": []string{"dual-channel", "msgpack", "hot-reload"},
	}, nil
}

// shutdown answers null, then the worker stops gracefully: Shutdown waits for this request's
// response to be written before it closes the data channel, removes the socket and lets Serve
// return.
func shutdown(ctx context.Context, _ aspectipc.Params) (any, error) {
	logLine("Worker: Shutting down...")
	aspectipc.WorkerFrom(ctx).Shutdown()
	return nil, nil
}

type item struct {
	ID    int64   `json:"id"`
	Value float64 `json:"value"`
}

func processItems(_ context.Context, p aspectipc.Params) (any, error) {
	var args struct {
		Items []item `json:"items"`
	}
	if err := p.Decode(&args); err != nil {
		return nil, err
	}
	logLine("Worker: Processing %d items...", len(args.Items))
	sum := 0.0
	for _, it := range args.Items { // in order: every SDK must return the same bits
		sum += it.Value
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
	rows, cols := len(args.Matrix), 0
	if rows > 0 {
		cols = len(args.Matrix[0])
	}
	logLine("Worker: Processing %dx%d matrix...", rows, cols)
	if rows*cols == 0 {
		return nil, &aspectipc.Error{Code: aspectipc.CodeInvalidParams, Message: "matrix is empty"}
	}
	sum := 0.0
	for _, row := range args.Matrix { // row by row, in order
		for _, v := range row {
			sum += v
		}
	}
	return map[string]any{"sum": sum, "avg": sum / float64(rows*cols)}, nil
}
