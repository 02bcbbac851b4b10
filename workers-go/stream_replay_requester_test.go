package aspectipc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
)

// requesterReplay replays a streams.json scenario as the requester (side "p"): a real Channel,
// whose peer is the test speaking raw frames. After each message the test writes, a $/ping round
// trip makes sure the channel's read loop has handled it before the next step.
type requesterReplay struct {
	t      *testing.T
	ch     *Channel
	peer   *streamPeer
	queue  []map[string]any // messages from the channel, in order, not yet checked
	syncs  int
	call   *StreamCall
	tryCtx context.Context
}

func replayRequester(t *testing.T, sc map[string]any) {
	peer, ch := newStreamPeer(t, HandlerTable{})
	x := &requesterReplay{t: t, ch: ch, peer: peer}
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errWouldWait)
	x.tryCtx = ctx
	for i, s := range cases(sc, "steps") {
		step := tagged(t, s).(map[string]any)
		switch {
		case step["at"] == "p":
			x.act(i, step)
		case step["wire"] == "p>w":
			got := x.next()
			if !sameValue(got, step["message"]) {
				t.Fatalf("step %d: the channel sent %v, want %v", i, got, step["message"])
			}
		case step["wire"] == "w>p":
			x.peer.send(step["message"].(map[string]any))
			x.sync()
		}
	}
	x.sync()
	if len(x.queue) > 0 {
		t.Fatalf("after the last step the channel sent %v", x.queue)
	}
}

// sync waits until the channel has handled everything the test wrote, collecting what it sent.
func (x *requesterReplay) sync() {
	x.syncs++
	id := fmt.Sprintf("sync-%d", x.syncs)
	x.peer.send(map[string]any{"jsonrpc": "2.0", "id": id, "method": "$/ping"})
	for {
		m := x.peer.next()
		if m["id"] == id {
			return
		}
		x.queue = append(x.queue, m)
	}
}

func (x *requesterReplay) next() map[string]any {
	if len(x.queue) == 0 {
		x.sync()
	}
	if len(x.queue) == 0 { // sent in the background ($/cancelRequest)
		return x.peer.next()
	}
	m := x.queue[0]
	x.queue = x.queue[1:]
	return m
}

func (x *requesterReplay) act(i int, step map[string]any) {
	t := x.t
	switch step["app"] {
	case "open":
		id, _ := integerOf(step["id"])
		x.ch.mu.Lock()
		x.ch.nextID = id.num - 1
		x.ch.mu.Unlock()
		var opts StreamOptions
		if out, ok := step["out"].(map[string]any); ok {
			w, _ := wireInt(out["window"])
			opts.OutWindow = int(w)
		}
		_, opts.In = step["in"]
		call, err := x.ch.RequestStream(context.Background(), step["method"].(string), step["params"].(map[string]any), opts)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		x.call = call
	case "send", "send_blocks", "send_fails":
		err := x.call.In.Send(x.tryCtx, step["value"])
		switch step["app"] {
		case "send":
			if err != nil {
				t.Fatalf("step %d: send: %v", i, err)
			}
		case "send_blocks":
			if !errors.Is(err, errWouldWait) {
				t.Fatalf("step %d: send does not wait: %v", i, err)
			}
		default:
			x.checkCode(i, err, step["code"])
		}
	case "take", "end":
		v, err := x.call.Out.Recv(x.tryCtx)
		if step["app"] == "take" {
			if err != nil || !sameValue(v, step["value"]) {
				t.Fatalf("step %d: took %v, %v; want %v", i, v, err, step["value"])
			}
			return
		}
		if err != io.EOF {
			t.Fatalf("step %d: want the end, got %v, %v", i, v, err)
		}
		x.checkResult(i, step["result"])
	case "fails":
		if step["dir"] == "out" {
			_, err := x.call.Out.Recv(x.tryCtx)
			x.checkCode(i, err, step["code"])
			return
		}
		_, err := x.call.Result(x.tryCtx)
		x.checkCode(i, err, step["code"])
	case "result":
		x.checkResult(i, step["result"])
	case "close":
		if err := x.call.CloseInput(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	case "abort":
		code, _ := wireInt(step["code"])
		if err := x.call.AbortInput(&Error{Code: int(code), Message: step["message"].(string)}); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	case "break":
		x.call.Cancel()
	default:
		t.Fatalf("step %d: unknown requester action %v", i, step["app"])
	}
}

func (x *requesterReplay) checkResult(i int, want any) {
	r, err := x.call.Result(x.tryCtx)
	if err != nil || !sameValue(r.Value(), want) {
		x.t.Fatalf("step %d: result %v, %v; want %v", i, r.Value(), err, want)
	}
}

func (x *requesterReplay) checkCode(i int, err error, want any) {
	var e *Error
	w, _ := wireInt(want)
	if !errors.As(err, &e) || int64(e.Code) != w {
		x.t.Fatalf("step %d: error %v, want code %d", i, err, w)
	}
}
