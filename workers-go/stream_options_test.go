package aspectipc

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// firstGrant opens an input stream on method with request id and returns the credit the handler
// grants at once (PROTOCOL.md 13.3), then ends the stream and takes the answer.
func firstGrant(t *testing.T, p *streamPeer, id int64, method string) int64 {
	t.Helper()
	p.request(id, method, map[string]any{"$/stream": streamDesc(0, true)})
	m := p.next()
	params, _ := m["params"].(map[string]any)
	if m["method"] != "$/stream/credit" || params["stream"] != id || params["dir"] != "in" {
		t.Fatalf("want the input stream's grant, got %v", m)
	}
	p.notify("$/stream/end", map[string]any{"stream": id, "dir": "in"})
	if answer := p.next(); answer["id"] != id || answer["result"] != int64(0) {
		t.Fatalf("want the sum 0, got %v", answer)
	}
	return params["add"].(int64)
}

func TestInputWindowIsTheFirstCredit(t *testing.T) {
	a, b := socketPair(t)
	sum := StreamHandler(testSumStream)
	ch, err := NewChannelBuilder().WithName("data").WithTransport(a).WithFraming(LengthPrefixedFraming{}).
		WithCodec(MessagePackCodec{}).
		WithHandler("sumBuilt", sum, InputWindow(4)).
		WithHandler("sumDefault", sum).
		WithHandlers(HandlerTable{"sumTable": sum}).
		withOptions(map[string][]HandlerOption{"sumTable": {InputWindow(1024)}, "other": {InputWindow(3)}}).
		Build()
	if err != nil {
		t.Fatal(err)
	}
	go ch.Run(context.Background())
	t.Cleanup(func() { ch.Close(); b.Close() })
	if err := ch.Handle("sumLive", sum, InputWindow(2)); err != nil {
		t.Fatal(err)
	}
	p := wrapStreamPeer(t, b)
	for i, want := range []struct {
		method string
		add    int64
	}{{"sumBuilt", 4}, {"sumDefault", DefaultStreamWindow}, {"sumTable", 1024}, {"sumLive", 2}} {
		if got := firstGrant(t, p, int64(i+1), want.method); got != want.add {
			t.Errorf("%s granted %d first, want %d", want.method, got, want.add)
		}
	}
	// Registering again without the option restores the default.
	if err := ch.Handle("sumLive", sum); err != nil {
		t.Fatal(err)
	}
	if got := firstGrant(t, p, 9, "sumLive"); got != DefaultStreamWindow {
		t.Errorf("sumLive re-registered granted %d, want %d", got, DefaultStreamWindow)
	}
}

func TestInputWindowOutOfRangeIsRefused(t *testing.T) {
	sum := StreamHandler(testSumStream)
	for _, bad := range []int{0, -1, 1025} {
		_, ch := newStreamPeer(t, HandlerTable{})
		err := ch.Handle("sumStream", sum, InputWindow(bad))
		if err == nil || !strings.Contains(err.Error(), `handler "sumStream"`) || !strings.Contains(err.Error(), "1 to 1024") {
			t.Errorf("Handle with InputWindow(%d): %v, want an error naming the handler", bad, err)
		}
		ch.mu.Lock()
		_, registered := ch.handlers["sumStream"]
		ch.mu.Unlock()
		if registered {
			t.Errorf("InputWindow(%d): the handler was registered anyway", bad)
		}
		_, err = NewChannelBuilder().WithTransport(nil).WithHandler("sumStream", sum, InputWindow(bad)).Build()
		if err == nil || !strings.Contains(err.Error(), `handler "sumStream"`) {
			t.Errorf("WithHandler with InputWindow(%d): Build gave %v", bad, err)
		}
		err = checkHandlerOptions(map[string][]HandlerOption{"sumStream": {InputWindow(bad)}}, HandlerTable{"sumStream": sum})
		if err == nil || !strings.Contains(err.Error(), `handler "sumStream"`) {
			t.Errorf("Config.HandlerOptions with InputWindow(%d): %v", bad, err)
		}
	}
	err := checkHandlerOptions(map[string][]HandlerOption{"sumStrem": {InputWindow(4)}}, HandlerTable{"sumStream": sum})
	if err == nil || !strings.Contains(err.Error(), `"sumStrem"`) {
		t.Errorf("HandlerOptions for a method with no handler: %v", err)
	}
}

// An end or error with dir "out" names the output stream the channel consumes: it fails with
// -32010 and that message, and the channel cancels the request (PROTOCOL.md 13.5).
func TestEndWithDirOutFailsTheCallersOutputStream(t *testing.T) {
	for _, method := range []string{"$/stream/end", "$/stream/error"} {
		p, ch := newStreamPeer(t, HandlerTable{})
		call, err := ch.RequestStream(context.Background(), "countTo", map[string]any{"n": int64(3)}, StreamOptions{OutWindow: 4})
		if err != nil {
			t.Fatal(err)
		}
		req := p.next()
		id := req["id"]
		params := map[string]any{"stream": id, "dir": "out"}
		if method == "$/stream/error" {
			params["error"] = map[string]any{"code": int64(-32000), "message": "x"}
		}
		p.notify(method, params)
		if m := p.next(); m["method"] != "$/cancelRequest" {
			t.Fatalf("%s: want $/cancelRequest, got %v", method, m)
		}
		_, err = call.Out.Recv(context.Background())
		var e *Error
		want := "stream 1 (out) on data: " + method + " is sent for input streams only"
		if !errors.As(err, &e) || e.Code != CodeStreamProtocol || e.Message != want {
			t.Fatalf("%s: Recv gave %v, want -32010 %q", method, err, want)
		}
	}
}
