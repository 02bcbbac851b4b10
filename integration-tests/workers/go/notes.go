package main

import (
	"context"
	"sync"
	"time"

	aspectipc "github.com/aspect-ipc/aspect-ipc/workers-go"
)

// Notification order (PROTOCOL.md 4.5): the notification note records, the request notes reads,
// one list per channel (by name, so that the data list outlives a reconnection).
var (
	notesMu sync.Mutex
	noted   = map[string][]any{}
)

// note waits delayMs, cancellably, before recording value: run one at a time, the records come
// out in arrival order; run concurrently, the shorter waits would record first.
func note(ctx context.Context, p aspectipc.Params) (any, error) {
	args, err := paramsOf("note", p)
	if err != nil {
		return nil, err
	}
	value, present := args.m["value"]
	if !present {
		return nil, args.invalid("value", "present (any value)")
	}
	delayMs, err := args.integer("delayMs")
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(time.Duration(delayMs) * time.Millisecond)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	name := aspectipc.ChannelFrom(ctx).Name()
	notesMu.Lock()
	defer notesMu.Unlock()
	noted[name] = append(noted[name], value)
	return nil, nil
}

// notes returns the values note recorded on this channel, in the order recorded.
func notes(ctx context.Context, _ aspectipc.Params) (any, error) {
	name := aspectipc.ChannelFrom(ctx).Name()
	notesMu.Lock()
	defer notesMu.Unlock()
	return append([]any{}, noted[name]...), nil
}
