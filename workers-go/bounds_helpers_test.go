package aspectipc

import (
	"context"
	"sync"
)

// Handlers of the helper worker for the memory bounds' process tests (bounds_process_test.go).
func init() {
	helperHandlers["heldNote"] = heldNote
	helperHandlers["openNoteGate"] = func(context.Context, Params) (any, error) {
		noteGate.once.Do(func() { close(noteGate.open) })
		return nil, nil
	}
	helperHandlers["noteLog"] = func(context.Context, Params) (any, error) {
		noteGate.mu.Lock()
		defer noteGate.mu.Unlock()
		return append([]int64{}, noteGate.log...), nil
	}
}

// noteGate holds the notifications of heldNote until openNoteGate, and logs them in the order
// they ran.
var noteGate = struct {
	open chan struct{}
	once sync.Once
	mu   sync.Mutex
	log  []int64
}{open: make(chan struct{})}

// heldNote, a notification handler, waits for openNoteGate, then logs its params' n.
func heldNote(ctx context.Context, p Params) (any, error) {
	var args struct {
		N int64 `json:"n"`
	}
	if err := p.Decode(&args); err != nil {
		return nil, err
	}
	select {
	case <-noteGate.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	noteGate.mu.Lock()
	noteGate.log = append(noteGate.log, args.N)
	noteGate.mu.Unlock()
	return nil, nil
}
