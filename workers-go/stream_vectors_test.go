package aspectipc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
)

// runStreamVectors runs spec/vectors/streams.json: every message case, and every scenario as each
// of its sides, the responder ("w", the stream table alone) and the requester ("p", a channel).
func runStreamVectors(t *testing.T, doc map[string]any) {
	for _, c := range cases(doc, "messages") {
		c := c
		t.Run(c["id"].(string), func(t *testing.T) {
			checkStreamMessage(t, tagged(t, c["message"]).(map[string]any), tagged(t, c["expect"]).(map[string]any))
		})
	}
	for _, c := range cases(doc, "scenarios") {
		c := c
		sides, _ := c["sides"].([]any)
		for _, side := range sides {
			if side == "w" {
				t.Run(c["id"].(string)+"/w", func(t *testing.T) { replayResponder(t, c) })
			} else {
				t.Run(c["id"].(string)+"/p", func(t *testing.T) { replayRequester(t, c) })
			}
		}
	}
}

func checkStreamMessage(t *testing.T, msg, expect map[string]any) {
	kind := expect["kind"].(string)
	got := map[string]any{"kind": kind}
	switch kind {
	case "open", "not_stream", "invalid_open":
		clean, open, invalid := parseStreamOpen(msg["params"])
		switch {
		case invalid != "":
			got = map[string]any{"kind": "invalid_open", "code": int64(CodeInvalidParams), "id": msg["id"]}
		case open == nil:
			got = map[string]any{"kind": "not_stream"}
		default:
			got = map[string]any{"kind": "open", "id": msg["id"], "method": msg["method"], "params": clean}
			if open.out {
				got["out"] = map[string]any{"window": open.window}
			}
			if open.in {
				got["in"] = map[string]any{}
			}
		}
	case "error_response":
		m := JSONRPCProtocol{}.Classify(msg)
		got = map[string]any{"kind": kind, "id": m.ID.Value(), "code": int64(m.Error.Code), "data": m.Error.Data}
		if m.Error.Code == CodeTooManyStreams { // and the SDK's own answer has that shape
			full := newStreamTable("data", DefaultStreamWindow, streamHooks{notify: func(<-chan struct{}, string, map[string]any) error { return nil }})
			full.open = MaxOpenStreams
			_, e := full.accept(IntID(77), &streamOpen{out: true, window: 16})
			if e == nil || !sameValue(e.Data, expect["data"]) || e.Code != CodeTooManyStreams {
				t.Errorf("-32009 answer: %+v", e)
			}
		}
	default:
		m := parseStreamMsg(msg["method"].(string), msg["params"])
		got = streamMsgExpect(m)
	}
	if !sameValue(got, expect) {
		t.Errorf("got %v, want %v", got, expect)
	}
}

func streamMsgExpect(m streamMsg) map[string]any {
	kinds := map[streamMsgKind]string{streamUnnamed: "unnamed", streamMalformed: "malformed", streamItem: "item",
		streamCredit: "credit", streamEnd: "end", streamError: "error"}
	got := map[string]any{"kind": kinds[m.kind]}
	if m.kind == streamUnnamed {
		return got
	}
	got["stream"], got["dir"] = m.stream.Value(), m.dir
	switch m.kind {
	case streamItem:
		got["seq"], got["value"] = m.seq, m.value
	case streamCredit:
		got["add"] = m.add
	case streamError:
		got["code"], got["message"] = int64(m.err.Code), m.err.Message
		if m.err.Data != nil {
			got["data"] = m.err.Data
		}
	}
	return got
}

// responderReplay is the responder side of one channel for the replay rule of
// spec/vectors/README.md: the stream table, and in place of the channel, answers recorded as
// runHandler sends them.
type responderReplay struct {
	t        *testing.T
	table    *streamTable
	emitted  []map[string]any
	reqs     map[ID]*replayRequest
	cur      ID
	lastErr  error
	tryCtx   context.Context // already done: a step that would wait returns errWouldWait
	answered map[ID]bool
}

type replayRequest struct {
	r      *streamReq
	cancel context.CancelCauseFunc
}

var errWouldWait = errors.New("would wait")

func replayResponder(t *testing.T, sc map[string]any) {
	x := &responderReplay{t: t, reqs: map[ID]*replayRequest{}, answered: map[ID]bool{}}
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errWouldWait)
	x.tryCtx = ctx
	x.table = newStreamTable("data", intOf(sc["in_window"], DefaultStreamWindow), streamHooks{
		notify: func(_ <-chan struct{}, method string, params map[string]any) error {
			x.emitted = append(x.emitted, map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
			return nil
		},
		fail: func(id ID, e *Error) {
			x.answer(id, nil, e)
			x.reqs[id].cancel(e)
		},
	})
	for i := int64(0); i < intOf(sc["open_streams"], 0); i++ {
		x.feed(map[string]any{"jsonrpc": "2.0", "id": 1001 + i, "method": "countTo",
			"params": map[string]any{"n": int64(1), "size": int64(0), "$/stream": map[string]any{"out": map[string]any{"window": int64(16)}}}})
	}
	x.expectNothing("after the open streams")
	for i, s := range cases(sc, "steps") {
		step := tagged(t, s).(map[string]any)
		switch {
		case step["at"] == "w":
			x.act(i, step)
		case step["wire"] == "w>p":
			if len(x.emitted) == 0 {
				t.Fatalf("step %d: nothing emitted, want %v", i, step["message"])
			}
			got := x.emitted[0]
			x.emitted = x.emitted[1:]
			if !sameMessage(got, step["message"].(map[string]any)) {
				t.Fatalf("step %d: emitted %v, want %v", i, got, step["message"])
			}
		case step["wire"] == "p>w":
			x.feed(step["message"].(map[string]any))
		}
	}
	x.expectNothing("after the last step")
}

// sameMessage compares an emitted message with the vector's: exactly, except the message of the
// errors the SDK words itself (README, replay rule).
func sameMessage(got, want map[string]any) bool {
	ge, ok1 := got["error"].(map[string]any)
	we, ok2 := want["error"].(map[string]any)
	if ok1 && ok2 {
		switch code, _ := integerOf(we["code"]); code {
		case IntID(CodeRequestCancelled), IntID(CodeTooManyStreams), IntID(CodeStreamProtocol):
			ge = copyMap(ge)
			ge["message"] = we["message"]
			got = copyMap(got)
			got["error"] = ge
		}
	}
	return sameValue(got, want)
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (x *responderReplay) expectNothing(when string) {
	if len(x.emitted) > 0 {
		x.t.Fatalf("%s: emitted %v", when, x.emitted)
	}
}

// feed plays what the channel's read loop does with a message from the requester.
func (x *responderReplay) feed(msg map[string]any) {
	method, _ := msg["method"].(string)
	id, isRequest := idOf(msg["id"])
	switch {
	case method == "":
		return // a response: for the requester side, which this SDK does not have
	case isRequest:
		_, open, invalid := parseStreamOpen(msg["params"])
		if open == nil || invalid != "" {
			x.t.Fatalf("scenario request without a valid descriptor: %v", msg)
		}
		r, e := x.table.accept(id, open)
		if e != nil {
			x.send(id, nil, e)
			return
		}
		ctx, cancel := context.WithCancelCause(context.Background())
		r.bind(ctx)
		x.reqs[id] = &replayRequest{r: r, cancel: cancel}
		x.cur = id
	case method == "$/cancelRequest":
		cid, _ := idOf(msg["params"].(map[string]any)["id"])
		if q := x.reqs[cid]; q != nil {
			q.cancel(ErrRequestCancelled)
			x.table.cancel(cid, ErrRequestCancelled)
		}
	default:
		x.table.handle(method, msg["params"])
	}
}

// answer is runHandler's one response: dropped when the request was answered already.
func (x *responderReplay) answer(id ID, result any, e *Error) {
	if x.answered[id] {
		return
	}
	x.answered[id] = true
	x.table.release(x.reqs[id].r, &Error{Code: CodeStreamClosed, Message: "answered"})
	x.send(id, result, e)
}

func (x *responderReplay) send(id ID, result any, e *Error) {
	if e != nil {
		em := map[string]any{"code": int64(e.Code), "message": e.Message}
		if e.Data != nil {
			em["data"] = e.Data
		}
		x.emitted = append(x.emitted, map[string]any{"jsonrpc": "2.0", "id": id.Value(), "error": em})
		return
	}
	x.emitted = append(x.emitted, map[string]any{"jsonrpc": "2.0", "id": id.Value(), "result": result})
}

func (x *responderReplay) act(i int, step map[string]any) {
	t, r := x.t, x.reqs[x.cur].r
	in, out := r.consumer, r.producer
	switch step["app"] {
	case "send", "send_blocks", "send_fails":
		err := out.Send(x.tryCtx, step["value"])
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
	case "take", "end", "fails":
		v, err := in.Recv(x.tryCtx)
		switch step["app"] {
		case "take":
			if err != nil || !sameValue(v, step["value"]) {
				t.Fatalf("step %d: took %v, %v; want %v", i, v, err, step["value"])
			}
		case "end":
			if err != io.EOF {
				t.Fatalf("step %d: want the end, got %v, %v", i, v, err)
			}
		default:
			x.checkCode(i, err, step["code"])
		}
	case "return":
		x.answer(x.cur, step["result"], nil)
	case "fail":
		code, _ := integerOf(step["code"])
		x.answer(x.cur, nil, &Error{Code: int(code.num), Message: step["message"].(string)})
	case "propagate":
		var e *Error
		switch {
		case errors.As(x.lastErr, &e):
		case errors.Is(x.lastErr, ErrRequestCancelled):
			e = cancelledError()
		default:
			t.Fatalf("step %d: nothing to propagate: %v", i, x.lastErr)
		}
		x.answer(x.cur, nil, &Error{Code: e.Code, Message: e.Message})
	default:
		t.Fatalf("step %d: unknown responder action %v", i, step["app"])
	}
}

func (x *responderReplay) checkCode(i int, err error, want any) {
	x.lastErr = err
	code := streamErrorCode(err)
	if w, _ := integerOf(want); IntID(int64(code)) != w {
		x.t.Fatalf("step %d: error %v (code %d), want code %v", i, err, code, want)
	}
}

func streamErrorCode(err error) int {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, ErrRequestCancelled):
		return CodeRequestCancelled
	}
	panic(fmt.Sprintf("no code for %v", err))
}
