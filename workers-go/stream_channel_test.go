package aspectipc

import (
	"context"
	"regexp"
	"testing"
	"time"
)

// The window bounds what the handler sends: a consumer that takes items slowly never sees an item
// beyond the credit it granted, and gets every item in order, then the result.
func TestStreamOutputRespectsTheWindow(t *testing.T) {
	p, _ := newStreamPeer(t, streamHandlers)
	checkStreamWindow(t, p)
}

func checkStreamWindow(t *testing.T, p *streamPeer) {
	const window, n = 2, 12
	p.request(5, "countTo", map[string]any{"n": n, "$/stream": streamDesc(window, false)})
	granted, taken := int64(window), int64(0)
	for i := int64(0); i < n; i++ {
		item := p.nextItem(5)
		if item["seq"] != i || item["value"] != i {
			t.Fatalf("item %d: %v", i, item)
		}
		if i >= granted {
			t.Fatalf("item seq %d arrived with only %d granted", i, granted)
		}
		time.Sleep(5 * time.Millisecond) // a slow consumer
		taken++
		if taken == (window+1)/2 {
			p.notify("$/stream/credit", map[string]any{"stream": 5, "dir": "out", "add": taken})
			granted += taken
			taken = 0
		}
	}
	resp := p.next()
	if res, _ := resp["result"].(map[string]any); res["count"] != int64(n) {
		t.Fatalf("want the result {count: %d}, got %v", n, resp)
	}
}

// An input stream gets the whole window at once, then ceil(window/2) after each half taken; the
// handler sees the params without $/stream.
func TestStreamInputCreditAndSum(t *testing.T) {
	p, _ := newStreamPeer(t, streamHandlers)
	checkStreamSum(t, p)
}

func checkStreamSum(t *testing.T, p *streamPeer) {
	p.request(8, "sumStream", map[string]any{"$/stream": streamDesc(0, true)})
	credit := int64(0)
	var want int64
	for i := int64(1); i <= 40; i++ {
		for credit == 0 {
			m := p.next()
			params := m["params"].(map[string]any)
			if m["method"] != "$/stream/credit" || params["dir"] != "in" {
				t.Fatalf("want credit, got %v", m)
			}
			if credit == 0 && i == 1 && params["add"] != int64(DefaultStreamWindow) {
				t.Fatalf("first grant %v, want the window", params)
			}
			credit += params["add"].(int64)
		}
		p.notify("$/stream/item", map[string]any{"stream": 8, "dir": "in", "seq": i - 1, "value": i})
		credit--
		want += i
	}
	p.notify("$/stream/end", map[string]any{"stream": 8, "dir": "in"})
	for {
		m := p.next()
		if m["method"] == "$/stream/credit" {
			continue
		}
		if m["result"] != want {
			t.Fatalf("want the sum %d, got %v", want, m)
		}
		return
	}
}

// echoStream: items come back in order, then {count}; a $/stream/error propagates unchanged.
func TestStreamEchoAndProducerError(t *testing.T) {
	p, _ := newStreamPeer(t, streamHandlers)
	checkStreamEcho(t, p)
}

func checkStreamEcho(t *testing.T, p *streamPeer) {
	p.request(9, "echoStream", map[string]any{"$/stream": streamDesc(4, true)})
	if m := p.next(); m["method"] != "$/stream/credit" {
		t.Fatalf("want the input window, got %v", m)
	}
	for i := int64(0); i < 3; i++ {
		p.notify("$/stream/item", map[string]any{"stream": 9, "dir": "in", "seq": i, "value": []byte{byte(i)}})
		item := p.nextItem(9)
		if b, _ := item["value"].([]byte); len(b) != 1 || b[0] != byte(i) || item["dir"] != "out" {
			t.Fatalf("echo %d: %v", i, item)
		}
	}
	p.notify("$/stream/end", map[string]any{"stream": 9, "dir": "in"})
	if m := p.next(); m["result"].(map[string]any)["count"] != int64(3) {
		t.Fatalf("want {count: 3}, got %v", m)
	}

	p.request(10, "echoStream", map[string]any{"$/stream": streamDesc(4, true)})
	p.next() // the input window
	p.notify("$/stream/error", map[string]any{"stream": 10, "dir": "in", "error": map[string]any{"code": 4001, "message": "disk gone"}})
	e := p.next()["error"].(map[string]any)
	if e["code"] != int64(4001) || e["message"] != "disk gone" {
		t.Fatalf("want the producer's error, got %v", e)
	}
}

// A producer waiting for credit stops within 100 ms of $/cancelRequest (PROTOCOL.md 13.6).
func TestStreamCancelWhileWaitingForCredit(t *testing.T) {
	p, _ := newStreamPeer(t, streamHandlers)
	checkStreamCancel(t, p)
}

func checkStreamCancel(t *testing.T, p *streamPeer) {
	p.request(5, "countTo", map[string]any{"n": 1000, "$/stream": streamDesc(2, false)})
	p.nextItem(5)
	p.nextItem(5) // no credit left: the handler waits in Send
	start := time.Now()
	p.notify("$/cancelRequest", map[string]any{"id": 5})
	m := p.next()
	if e, _ := m["error"].(map[string]any); e["code"] != int64(CodeRequestCancelled) {
		t.Fatalf("want -32002, got %v", m)
	}
	if d := time.Since(start); d > 500*time.Millisecond { // the bound is 100 ms; margin for -race
		t.Fatalf("the cancelled producer answered after %v", d)
	}
	// Late credit for the cancelled stream is dropped: the channel goes on.
	p.notify("$/stream/credit", map[string]any{"stream": 5, "dir": "out", "add": 1})
	p.request(6, "$/ping", nil)
	if m := p.next(); m["id"] != int64(6) {
		t.Fatalf("want the ping's answer, got %v", m)
	}
}

// Protocol errors: an item over the window, credit above 1024, and the 64-stream limit.
func TestStreamProtocolErrorsAndLimits(t *testing.T) {
	p, _ := newStreamPeer(t, streamHandlers)
	p.request(1, "countTo", map[string]any{"n": 0, "$/stream": map[string]any{"out": map[string]any{"window": 0}}})
	if e := p.next()["error"].(map[string]any); e["code"] != int64(CodeInvalidParams) {
		t.Fatalf("window 0: %v", e)
	}
	p.request(2, "countTo", map[string]any{"n": 0})
	if e := p.next()["error"].(map[string]any); e["code"] != int64(CodeInvalidParams) {
		t.Fatalf("no stream: %v", e)
	}

	p.request(3, "countTo", map[string]any{"n": 5, "$/stream": streamDesc(1, false)})
	p.nextItem(3)
	p.notify("$/stream/credit", map[string]any{"stream": 3, "dir": "out", "add": 1025})
	m := p.next()
	e, _ := m["error"].(map[string]any)
	data, _ := e["data"].(map[string]any)
	if e["code"] != int64(CodeStreamProtocol) || data["stream"] != int64(3) || data["dir"] != "out" {
		t.Fatalf("credit above 1024: %v", m)
	}

	// 64 streams: 32 echoStreams waiting for input, 2 each.
	for i := int64(100); i < 132; i++ {
		p.request(i, "echoStream", map[string]any{"$/stream": streamDesc(4, true)})
		p.next()
	}
	p.request(200, "countTo", map[string]any{"n": 1, "$/stream": streamDesc(4, false)})
	m = p.next()
	e, _ = m["error"].(map[string]any)
	if e["code"] != int64(CodeTooManyStreams) || e["data"].(map[string]any)["limit"] != int64(64) {
		t.Fatalf("65th stream: %v", m)
	}
	// An item over the window of stream 100 (16: the default input window) fails it with -32010;
	// its two streams close, so one more may open.
	for seq := int64(0); seq <= DefaultStreamWindow; seq++ {
		p.notify("$/stream/item", map[string]any{"stream": 100, "dir": "in", "seq": seq, "value": seq})
	}
	for {
		m = p.next()
		if m["id"] == int64(100) {
			break
		}
	}
	if e, _ := m["error"].(map[string]any); e["code"] != int64(CodeStreamProtocol) {
		t.Fatalf("over the window: %v", m)
	}
	p.request(201, "countTo", map[string]any{"n": 0, "$/stream": streamDesc(4, false)})
	for {
		m = p.next()
		if m["id"] == int64(201) {
			break
		}
	}
	if m["result"] == nil {
		t.Fatalf("after one stream closed: %v", m)
	}
}

// $/stream/* is handled in the read loop, never queued behind a notification handler (13.4).
func TestStreamMessagesAreNotQueuedBehindNotifications(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	handlers := HandlerTable{"block": func(ctx context.Context, _ Params) (any, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	}}
	for k, v := range streamHandlers {
		handlers[k] = v
	}
	p, _ := newStreamPeer(t, handlers)
	p.request(5, "countTo", map[string]any{"n": 2, "$/stream": streamDesc(1, false)})
	p.nextItem(5)
	p.notify("block", nil)
	p.notify("$/stream/credit", map[string]any{"stream": 5, "dir": "out", "add": 1})
	p.nextItem(5)
	if m := p.next(); m["result"] == nil {
		t.Fatalf("want the result, got %v", m)
	}
}

// An item that cannot be encoded is never sent: Send fails and the stream stays open.
func TestStreamUnencodableItemKeepsTheStream(t *testing.T) {
	handlers := HandlerTable{"bad": StreamHandler(func(ctx context.Context, _ Params, _ *InStream, out *OutStream) (any, error) {
		if err := out.Send(ctx, make(chan int)); err == nil {
			return nil, &Error{Code: CodeInternalError, Message: "an unencodable item was sent"}
		}
		return nil, out.Send(ctx, "fine")
	})}
	p, _ := newStreamPeer(t, handlers)
	p.request(1, "bad", map[string]any{"$/stream": streamDesc(1, false)})
	if item := p.nextItem(1); item["seq"] != int64(0) || item["value"] != "fine" {
		t.Fatalf("want seq 0 \"fine\", got %v", item)
	}
	if m := p.next(); m["id"] != int64(1) || m["error"] != nil {
		t.Fatalf("want the result, got %v", m)
	}
}

// The responder checks the method before the descriptor (PROTOCOL.md 13.1).
func TestStreamUnknownMethodBeforeDescriptor(t *testing.T) {
	p, _ := newStreamPeer(t, streamHandlers)
	p.request(1, "nope", map[string]any{"$/stream": 16})
	if e := p.next()["error"].(map[string]any); e["code"] != int64(CodeMethodNotFound) {
		t.Fatalf("want -32601, got %v", e)
	}
	p.request(2, "countTo", map[string]any{"n": 1, "$/stream": map[string]any{"out": map[string]any{"window": 2}, "sideways": map[string]any{}}})
	if e := p.next()["error"].(map[string]any); e["code"] != int64(CodeInvalidParams) {
		t.Fatalf("want -32602, got %v", e)
	}
}

// A handler waiting for credit or for an item returns when the channel closes (PROTOCOL.md 13.7).
func TestStreamStepsFailWhenTheChannelCloses(t *testing.T) {
	returned := make(chan error, 2)
	handlers := HandlerTable{
		"wait": StreamHandler(func(ctx context.Context, _ Params, in *InStream, out *OutStream) (any, error) {
			if out != nil {
				if err := out.Send(ctx, 1); err != nil {
					return nil, err
				}
				returned <- out.Send(ctx, 2) // no credit left: waits
			} else {
				_, err := in.Recv(ctx)
				returned <- err
			}
			return nil, nil
		}),
	}
	p, ch := newStreamPeer(t, handlers)
	p.request(1, "wait", map[string]any{"$/stream": streamDesc(1, false)})
	p.nextItem(1)
	p.request(2, "wait", map[string]any{"$/stream": streamDesc(0, true)})
	p.next() // the input window
	ch.Close()
	for i := 0; i < 2; i++ {
		select {
		case err := <-returned:
			if err == nil {
				t.Fatal("a stream step succeeded on a closed channel")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a stream step still waits after the channel closed")
		}
	}
}

// A stream item over the peer's limit is refused as a notification, which it is (PROTOCOL.md
// 12.1), with the exact sizes, and the stream stays open (13). (The Go SDK said "frame of ...".)
func TestStreamItemOverTheLimitIsANotificationTooLarge(t *testing.T) {
	refusals := make(chan string, 1)
	handlers := HandlerTable{"big": StreamHandler(func(ctx context.Context, _ Params, _ *InStream, out *OutStream) (any, error) {
		err := out.Send(ctx, make([]byte, 5000))
		if err == nil {
			return nil, &Error{Code: CodeInternalError, Message: "an item over the limit was sent"}
		}
		refusals <- err.Error()
		return nil, out.Send(ctx, "fine")
	})}
	a, b := socketPair(t)
	ch, err := NewChannelBuilder().WithName("data").WithTransport(a).WithFraming(LengthPrefixedFraming{MaxFrameSize: 4096}).
		WithCodec(MessagePackCodec{}).WithHandlers(handlers).Build()
	if err != nil {
		t.Fatal(err)
	}
	go ch.Run(context.Background())
	t.Cleanup(func() { ch.Close(); b.Close() })
	p := wrapStreamPeer(t, b)
	p.request(1, "big", map[string]any{"$/stream": streamDesc(1, false)})
	if item := p.nextItem(1); item["seq"] != int64(0) || item["value"] != "fine" {
		t.Fatalf("want seq 0 \"fine\", got %v", item)
	}
	if m := p.next(); m["id"] != int64(1) || m["error"] != nil {
		t.Fatalf("want the result, got %v", m)
	}
	if refusal := <-refusals; !regexp.MustCompile(`^notification of \d+ bytes exceeds max_frame_size of 4096 bytes`).MatchString(refusal) {
		t.Fatalf("the item's refusal says %q", refusal)
	}
}
