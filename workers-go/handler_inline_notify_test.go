package aspectipc

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Inline is an option like InputWindow: Channel.Handle sets and clears it; a notification to an
// inline method waits its turn behind the notifications queued before it.
func TestInlineOptionAndNotificationOrder(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var order []string
	releaseFirst := make(chan struct{})
	slowNote := func(_ context.Context, p Params) (any, error) {
		<-releaseFirst
		mu.Lock()
		order = append(order, "queued")
		mu.Unlock()
		return nil, nil
	}
	fastNote := func(ctx context.Context, _ Params) (any, error) {
		mu.Lock()
		order = append(order, "inline:"+inflightFrom(ctx).inline)
		mu.Unlock()
		return nil, nil
	}
	p := newInlinePeer(t, func(b *ChannelBuilder) { b.WithHandler("slowNote", slowNote) })
	if err := p.server.Handle("fastNote", fastNote, Inline()); err != nil {
		t.Fatal(err)
	}
	if err := p.server.Handle("echo", echoHandler, Inline()); err != nil {
		t.Fatal(err)
	}
	note := func(method string) map[string]any { return map[string]any{"jsonrpc": "2.0", "method": method} }
	p.send(note("slowNote"), note("fastNote"), request(1, "echo", []any{}))
	p.in.next() // the echo: both notifications have been read
	close(releaseFirst)
	p.send(request(2, "echo", []any{}))
	p.in.next()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := append([]string{}, order...)
		mu.Unlock()
		if len(got) == 2 && p.server.notificationsIdle() {
			if got[0] != "queued" || got[1] != "inline:" {
				t.Fatalf("notifications ran as %v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notifications ran: %v", got)
		}
		time.Sleep(time.Millisecond)
	}
	p.send(note("fastNote")) // the queue is idle now: inline
	p.send(request(3, "echo", []any{}))
	p.in.next()
	mu.Lock()
	if len(order) != 3 || order[2] != "inline:fastNote" {
		t.Fatalf("idle queue: %v", order)
	}
	mu.Unlock()
	if err := p.server.Handle("fastNote", fastNote); err != nil { // re-registered without it
		t.Fatal(err)
	}
	p.server.mu.Lock()
	defer p.server.mu.Unlock()
	if p.server.inline["fastNote"] || !p.server.inline["echo"] {
		t.Fatalf("inline methods: %v", p.server.inline)
	}
}
