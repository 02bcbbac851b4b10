package aspectipc

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// Stream handlers for the tests, in the spirit of the test worker's (integration-tests/WORKERS.md):
// the in-memory tests serve them on a channel, the process tests from the helper worker.
func init() {
	helperHandlers["countTo"] = StreamHandler(testCountTo)
	helperHandlers["sumStream"] = StreamHandler(testSumStream)
	helperHandlers["echoStream"] = StreamHandler(testEchoStream)
}

var streamHandlers = HandlerTable{
	"countTo":    StreamHandler(testCountTo),
	"sumStream":  StreamHandler(testSumStream),
	"echoStream": StreamHandler(testEchoStream),
}

func testCountTo(ctx context.Context, p Params, _ *InStream, out *OutStream) (any, error) {
	var args struct {
		N int64 `json:"n"`
	}
	if err := p.Decode(&args); err != nil {
		return nil, err
	}
	if out == nil {
		return nil, MissingStream("countTo", "out")
	}
	for i := int64(0); i < args.N; i++ {
		if err := out.Send(ctx, i); err != nil {
			return nil, err
		}
	}
	return map[string]any{"count": args.N}, nil
}

func testSumStream(ctx context.Context, _ Params, in *InStream, _ *OutStream) (any, error) {
	if in == nil {
		return nil, MissingStream("sumStream", "in")
	}
	var sum int64
	for {
		v, err := in.Recv(ctx)
		if errors.Is(err, io.EOF) {
			return sum, nil
		}
		if err != nil {
			return nil, err
		}
		n, ok := v.(int64)
		if !ok {
			return nil, &Error{Code: CodeInvalidParams, Message: "Invalid params: items must be integers"}
		}
		sum += n
	}
}

func testEchoStream(ctx context.Context, _ Params, in *InStream, out *OutStream) (any, error) {
	count := 0
	for {
		v, err := in.Recv(ctx)
		if errors.Is(err, io.EOF) {
			return map[string]any{"count": int64(count)}, nil
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

// streamPeer is the requester side of a stream test, speaking raw MessagePack frames to a
// channel that serves handlers (the Go SDK has no requester side for streams).
type streamPeer struct {
	t    *testing.T
	conn net.Conn
	msgs chan map[string]any
}

func newStreamPeer(t *testing.T, handlers HandlerTable) (*streamPeer, *Channel) {
	t.Helper()
	a, b := socketPair(t)
	ch, err := NewChannelBuilder().WithName("data").WithTransport(a).WithFraming(LengthPrefixedFraming{}).
		WithCodec(MessagePackCodec{}).WithHandlers(handlers).Build()
	if err != nil {
		t.Fatal(err)
	}
	go ch.Run(context.Background())
	t.Cleanup(func() { ch.Close(); b.Close() })
	return wrapStreamPeer(t, b), ch
}

func wrapStreamPeer(t *testing.T, conn net.Conn) *streamPeer {
	p := &streamPeer{t: t, conn: conn, msgs: make(chan map[string]any, 4096)}
	r := &frameReader{t: t, conn: conn, dec: LengthPrefixedFraming{}.NewDecoder()}
	go func() { // reads in the background so that the worker is never stalled by the test's pace
		defer close(p.msgs)
		buf := make([]byte, 1<<16)
		for {
			if frame, err := r.dec.Next(); err == nil {
				v, err := MessagePackCodec{}.Decode(frame)
				if err != nil {
					return
				}
				p.msgs <- v.(map[string]any)
				continue
			}
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			r.dec.Feed(buf[:n])
		}
	}()
	return p
}

func (p *streamPeer) send(msg map[string]any) {
	p.t.Helper()
	payload, err := MessagePackCodec{}.Encode(msg)
	if err != nil {
		p.t.Fatal(err)
	}
	frame, _ := LengthPrefixedFraming{}.Encode(payload)
	if _, err := p.conn.Write(frame); err != nil {
		p.t.Fatal(err)
	}
}

func (p *streamPeer) notify(method string, params map[string]any) {
	p.send(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
}

func (p *streamPeer) request(id int64, method string, params map[string]any) {
	p.send(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

// next returns the next message from the channel, failing after 10 s.
func (p *streamPeer) next() map[string]any {
	p.t.Helper()
	select {
	case m, ok := <-p.msgs:
		if !ok {
			p.t.Fatal("the channel closed the connection")
		}
		return m
	case <-time.After(10 * time.Second):
		p.t.Fatal("no message within 10 s")
	}
	return nil
}

// nextItem returns the next message, which must be an item of stream id; it returns its params.
func (p *streamPeer) nextItem(id int64) map[string]any {
	p.t.Helper()
	m := p.next()
	params, _ := m["params"].(map[string]any)
	if m["method"] != "$/stream/item" || params["stream"] != id {
		p.t.Fatalf("want an item of stream %d, got %v", id, m)
	}
	return params
}

func streamDesc(out int64, in bool) map[string]any {
	d := map[string]any{}
	if out > 0 {
		d["out"] = map[string]any{"window": out}
	}
	if in {
		d["in"] = map[string]any{}
	}
	return d
}
