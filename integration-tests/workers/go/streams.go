package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"

	aspectipc "github.com/aspect-ipc/aspect-ipc/workers-go"
)

// The stream methods of integration-tests/WORKERS.md (PROTOCOL.md 13).

func invalidParams(format string, args ...any) error {
	return &aspectipc.Error{Code: aspectipc.CodeInvalidParams, Message: "Invalid params: " + fmt.Sprintf(format, args...)}
}

// countTo sends n items on its output stream, each waiting for credit, then returns {"count": n}.
func countTo(ctx context.Context, p aspectipc.Params, _ *aspectipc.InStream, out *aspectipc.OutStream) (any, error) {
	args, err := paramsOf("countTo", p)
	if err != nil {
		return nil, err
	}
	n, err := args.integer("n")
	if err != nil {
		return nil, err
	}
	size, err := args.integer("size")
	if err != nil {
		return nil, err
	}
	tag, err := args.optionalStr("tag")
	if err != nil {
		return nil, err
	}
	switch {
	case n < 0:
		return nil, invalidParams("countTo: n must be >= 0, got %d", n)
	case size < 0 || (size > 0 && size < 8):
		return nil, invalidParams("countTo: size must be 0 or at least 8, got %d", size)
	case size > 0 && aspectipc.ChannelFrom(ctx).Name() == "control":
		return nil, invalidParams("countTo: binary items (size > 0) travel on data only")
	case out == nil:
		return nil, aspectipc.MissingStream("countTo", "out")
	}
	var buf []byte // one buffer refilled for every binary item: Send returns once it is written
	if size > 0 {
		buf = make([]byte, size)
	}
	for i := int64(0); i < n; i++ {
		var item any = i
		if size > 0 {
			binary.BigEndian.PutUint64(buf, uint64(i))
			item = buf
		}
		if err := out.Send(ctx, item); err != nil {
			if ctx.Err() != nil && tag != "" {
				control := aspectipc.WorkerFrom(ctx).Control()
				_ = control.Notify(context.Background(), "cancelObserved", map[string]any{"tag": tag})
			}
			return nil, err
		}
	}
	return map[string]any{"count": n}, nil
}

// sumStream sums the items of its input stream: exactly when all are integers, in float64 in
// arrival order as soon as one is a float.
func sumStream(ctx context.Context, _ aspectipc.Params, in *aspectipc.InStream, _ *aspectipc.OutStream) (any, error) {
	if in == nil {
		return nil, aspectipc.MissingStream("sumStream", "in")
	}
	exact, fsum, floats := new(big.Int), 0.0, false
	for i := 0; ; i++ {
		v, err := in.Recv(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch x := v.(type) {
		case int64:
			exact.Add(exact, big.NewInt(x))
			fsum += float64(x)
		case uint64:
			exact.Add(exact, new(big.Int).SetUint64(x))
			fsum += float64(x)
		case float64:
			floats = true
			fsum += x
		default:
			return nil, invalidParams("item %d must be a number, got %s", i, kindOf(v))
		}
	}
	if floats {
		return fsum, nil
	}
	if !exact.IsInt64() {
		return nil, invalidParams("integer overflow: the sum %s is outside [%d, %d]", exact, int64(math.MinInt64), int64(math.MaxInt64))
	}
	return exact.Int64(), nil
}

// echoStream sends each input item back as an output item before reading the next.
func echoStream(ctx context.Context, _ aspectipc.Params, in *aspectipc.InStream, out *aspectipc.OutStream) (any, error) {
	if in == nil || out == nil {
		return nil, invalidParams("echoStream needs an input and an output stream ($/stream.in and $/stream.out)")
	}
	count := 0
	for {
		v, err := in.Recv(ctx)
		if errors.Is(err, io.EOF) {
			return map[string]any{"count": count}, nil
		}
		if err != nil {
			return nil, err
		}
		if err := out.Send(ctx, v); err != nil {
			return nil, err
		}
		count++
	}
}
