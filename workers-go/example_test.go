package aspectipc_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	aspectipc "github.com/aspect-ipc/aspect-ipc/workers-go"
)

// A complete worker: one method on the control channel, one on the data channel. Build it with
// go build and give the binary's path to the parent's ProcessManager.spawn.
func Example() {
	err := aspectipc.Serve(context.Background(), aspectipc.Config{
		Control: aspectipc.HandlerTable{
			"getStatus": func(context.Context, aspectipc.Params) (any, error) {
				return map[string]any{"status": "running"}, nil
			},
		},
		Data: aspectipc.HandlerTable{
			"sum": func(_ context.Context, params aspectipc.Params) (any, error) {
				var args struct {
					Values []float64 `json:"values"`
				}
				if err := params.Decode(&args); err != nil {
					return nil, err // answered -32602, naming the bad field
				}
				total := 0.0
				for _, v := range args.Values {
					total += v
				}
				return total, nil
			},
		},
	})
	os.Exit(aspectipc.ExitCode(err))
}

// Hooks report the worker's life; Logger receives the SDK's own diagnostics. Both write to stderr,
// never to stdout (the protocol's).
func ExampleHooks() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	err := aspectipc.Serve(context.Background(), aspectipc.Config{
		Control: aspectipc.HandlerTable{},
		Logger:  logger,
		Hooks: aspectipc.Hooks{
			OnReady: func() { logger.Info("ready") },
			OnShuttingDown: func(reason aspectipc.ShutdownReason) {
				logger.Info("stopping", "reason", reason) // "shutdown_request", "stdin_eof", "signal"...
			},
			OnStopped: func() { logger.Info("stopped") },
		},
	})
	os.Exit(aspectipc.ExitCode(err))
}

// Handlers are plain functions: they can be built, and called, without a running worker.
func ExampleHandlerTable() {
	handlers := aspectipc.HandlerTable{
		"divide": func(_ context.Context, params aspectipc.Params) (any, error) {
			var args struct {
				A float64 `json:"a"`
				B float64 `json:"b"`
			}
			if err := params.Decode(&args); err != nil {
				return nil, err
			}
			if args.B == 0 {
				// The parent receives exactly this code, message and data.
				return nil, &aspectipc.Error{Code: 1001, Message: "division by zero", Data: map[string]any{"a": args.A}}
			}
			return args.A / args.B, nil
		},
	}
	config := aspectipc.Config{Data: handlers} // what aspectipc.Serve(ctx, config) would serve

	// A request without params leaves args at its zero value: b is 0.
	_, err := config.Data["divide"](context.Background(), aspectipc.Params{})
	var rpcError *aspectipc.Error
	if errors.As(err, &rpcError) {
		fmt.Println(rpcError.Code, rpcError.Message)
	}
	// Output:
	// 1001 division by zero
}

// The data channel's path for a worker, as the parent computes it (PROTOCOL.md section 6).
func ExamplePipePath_ForModule() {
	path, _ := aspectipc.PipePath{Platform: "linux"}.ForModule("my-app", "worker-1")
	fmt.Println(path)
	path, _ = aspectipc.PipePath{Directory: "/run/my-app", Platform: "linux"}.ForModule("my-app", "worker-1")
	fmt.Println(path)
	// Names with characters outside [A-Za-z0-9._-] get a digest, so they never share a path.
	path, _ = aspectipc.PipePath{Platform: "linux"}.ForModule("my app", "worker/1")
	fmt.Println(path)
	_, err := aspectipc.PipePath{}.ForModule("", "worker-1")
	fmt.Println(errors.Is(err, aspectipc.ErrEmptyName))
	// Output:
	// /tmp/my-app-worker-1.sock
	// /run/my-app/my-app-worker-1.sock
	// /tmp/my_app-worker_1-5326bb8d54646e0e.sock
	// true
}

// A data channel frame: a 4-byte big-endian length, then the MessagePack payload.
func ExampleLengthPrefixedFraming_Encode() {
	payload, _ := aspectipc.MessagePackCodec{}.Encode("hello")
	frame, _ := aspectipc.LengthPrefixedFraming{}.Encode(payload)
	fmt.Printf("% x\n", frame)
	// Output:
	// 00 00 00 06 a5 68 65 6c 6c 6f
}
