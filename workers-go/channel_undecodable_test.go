package aspectipc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// An answer that does not decode but whose top level is recovered fails the pending request it
// names at once, with a *ProtocolError naming the decoding failure, and nothing is sent back
// (PROTOCOL.md 4.8). Anything else that does not decode is answered -32700 as before, and leaves
// the request pending.

// rawPeer is the far end of a channel, speaking raw payloads: a fake parent.
type rawPeer struct {
	t       *testing.T
	conn    net.Conn
	framing Framing
	codec   Codec
	dec     FrameDecoder
}

func (p *rawPeer) write(payload []byte) {
	p.t.Helper()
	frame, err := p.framing.Encode(payload)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.conn.Write(frame); err != nil {
		p.t.Fatal(err)
	}
}

func (p *rawPeer) send(msg map[string]any) {
	p.t.Helper()
	payload, err := p.codec.Encode(msg)
	if err != nil {
		p.t.Fatal(err)
	}
	p.write(payload)
}

// read returns the next message the channel sent.
func (p *rawPeer) read() map[string]any {
	p.t.Helper()
	buf := make([]byte, 64<<10)
	for {
		payload, err := p.dec.Next()
		if err == nil {
			v, err := p.codec.Decode(append([]byte(nil), payload...))
			if err != nil {
				p.t.Fatalf("the channel sent %q: %v", payload, err)
			}
			return v.(map[string]any)
		}
		if !errors.Is(err, ErrIncomplete) {
			p.t.Fatalf("reading from the channel: %v", err)
		}
		_ = p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := p.conn.Read(buf)
		if err != nil {
			p.t.Fatalf("reading from the channel: %v", err)
		}
		p.dec.Feed(buf[:n])
	}
}

// channelWithPeer runs a channel named name, with a "ping" handler, connected to a raw peer.
func channelWithPeer(t *testing.T, name string, framing Framing, codec Codec) (*Channel, *rawPeer) {
	t.Helper()
	a, b := socketPair(t)
	t.Cleanup(func() { b.Close() })
	ch, err := NewChannelBuilder().WithName(name).WithTransport(a).WithFraming(framing).WithCodec(codec).
		WithHandlers(HandlerTable{"ping": func(context.Context, Params) (any, error) { return "pong", nil }}).Build()
	if err != nil {
		t.Fatal(err)
	}
	go ch.Run(context.Background())
	t.Cleanup(func() { ch.Close() })
	return ch, &rawPeer{t: t, conn: b, framing: framing, codec: codec, dec: framing.NewDecoder()}
}

// askPeer sends a request on ch and returns the id the peer sees and where the outcome arrives.
// The request's own deadline is far beyond what the tests wait for.
func askPeer(t *testing.T, ch *Channel, peer *rawPeer) (int64, <-chan outcome) {
	t.Helper()
	done := make(chan outcome, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := ch.Request(ctx, "ask", nil)
		done <- outcome{result: res, err: err}
	}()
	req := peer.read()
	if req["method"] != "ask" {
		t.Fatalf("the peer got %v", req)
	}
	return req["id"].(int64), done
}

// mpFixstr is a MessagePack fixstr.
func mpFixstr(s string) []byte { return append([]byte{0xa0 | byte(len(s))}, s...) }

// mpAnswer is {"jsonrpc": "2.0", "id": id, member: <raw>} in MessagePack, raw written as given.
func mpAnswer(id int64, member string, raw []byte) []byte {
	b := append([]byte{0x83}, mpFixstr("jsonrpc")...)
	b = append(b, mpFixstr("2.0")...)
	b = append(b, mpFixstr("id")...)
	b = append(b, byte(id)) // a positive fixint: the tests' ids are small
	b = append(b, mpFixstr(member)...)
	return append(b, raw...)
}

// failOnBad is a decode hook that refuses the maps holding "bad".
func failOnBad(m map[string]any) (any, error) {
	if _, ok := m["bad"]; ok {
		return nil, errors.New("bad map")
	}
	return m, nil
}

// panicOnBad is a decode hook that panics on the maps holding "bad": the same failure.
func panicOnBad(m map[string]any) (any, error) {
	if _, ok := m["bad"]; ok {
		panic("bad map")
	}
	return m, nil
}

type undecodableAnswer struct {
	name   string
	answer func(id int64) []byte
	detail string // in the decoding failure
}

func jsonAnswer(format string) func(int64) []byte {
	return func(id int64) []byte { return []byte(strings.ReplaceAll(format, "ID", fmt.Sprint(id))) }
}

var undecodableAnswers = []struct {
	name    string
	framing Framing
	codec   Codec
	cases   []undecodableAnswer
}{
	{"control", LineDelimitedFraming{}, JSONCodec{}, []undecodableAnswer{
		{"integer out of range", jsonAnswer(`{"jsonrpc":"2.0","id":ID,"result":[18446744073709551616]}`), "18446744073709551616"},
		{"lone surrogate", jsonAnswer(`{"jsonrpc":"2.0","id":ID,"result":"a\ud800b"}`), "surrogate"},
		{"nesting deeper than 512", jsonAnswer(`{"jsonrpc":"2.0","id":ID,"result":` + strings.Repeat("[", 512) + strings.Repeat("]", 512) + `}`), "512"},
		{"float overflow", jsonAnswer(`{"jsonrpc":"2.0","id":ID,"result":1e400}`), "1e400"},
		{"error member, id last", jsonAnswer(`{"jsonrpc":"2.0","error":{"code":1,"message":"\udc00"},"id":ID}`), "surrogate"},
	}},
	{"data", LengthPrefixedFraming{}, MessagePackCodec{}, []undecodableAnswer{
		{"ext type", func(id int64) []byte { return mpAnswer(id, "result", []byte{0x91, 0xd4, 0x05, 0x01}) }, "ext"},
		{"invalid UTF-8 in a str", func(id int64) []byte { return mpAnswer(id, "result", []byte{0xa2, 0xff, 0xfe}) }, "UTF-8"},
		{"nesting deeper than 512", func(id int64) []byte {
			return mpAnswer(id, "result", append([]byte(strings.Repeat("\x91", 512)), 0x90))
		}, "512"},
		{"error member with an ext type", func(id int64) []byte {
			e := []byte{0x83} // {"code": 1, "message": "m", "data": <ext 5>}
			e = append(append(e, mpFixstr("code")...), 0x01)
			e = append(append(e, mpFixstr("message")...), mpFixstr("m")...)
			e = append(append(e, mpFixstr("data")...), 0xd4, 0x05, 0x01)
			return mpAnswer(id, "error", e)
		}, "ext"},
	}},
	{"data with a decode hook", LengthPrefixedFraming{}, MessagePackCodec{DecodeHook: failOnBad}, []undecodableAnswer{
		{"decode hook error", func(id int64) []byte {
			return mpAnswer(id, "result", append([]byte{0x81}, append(mpFixstr("bad"), 1)...))
		}, "bad map"},
	}},
	{"data with a panicking decode hook", LengthPrefixedFraming{}, MessagePackCodec{DecodeHook: panicOnBad}, []undecodableAnswer{
		{"decode hook panic", func(id int64) []byte {
			return mpAnswer(id, "result", append([]byte{0x81}, append(mpFixstr("bad"), 1)...))
		}, "decode hook failed at $.result: panic: bad map"},
	}},
	{"data with a panicking decode hook and its keys", LengthPrefixedFraming{}, MessagePackCodec{DecodeHook: panicOnBad, DecodeHookKeys: []string{"bad"}}, []undecodableAnswer{
		{"decode hook panic", func(id int64) []byte {
			return mpAnswer(id, "result", append([]byte{0x91, 0x81}, append(mpFixstr("bad"), 1)...))
		}, "decode hook failed at $.result[0]: panic: bad map"},
	}},
	{"control with a panicking decode hook", LineDelimitedFraming{}, JSONCodec{DecodeHook: panicOnBad}, []undecodableAnswer{
		{"decode hook panic", jsonAnswer(`{"jsonrpc":"2.0","id":ID,"result":{"x":[{"bad":1}]}}`), "decode hook failed at $.result.x[0]: panic: bad map"},
		{"decode hook panic in an error's data", jsonAnswer(`{"jsonrpc":"2.0","id":ID,"error":{"code":1,"message":"m","data":{"bad":1}}}`), "panic: bad map"},
	}},
}

func TestUndecodableAnswerFailsItsRequestAtOnce(t *testing.T) {
	t.Parallel()
	for _, side := range undecodableAnswers {
		side := side
		t.Run(side.name, func(t *testing.T) {
			t.Parallel()
			name := strings.Fields(side.name)[0]
			ch, peer := channelWithPeer(t, name, side.framing, side.codec)
			for _, c := range side.cases {
				id, done := askPeer(t, ch, peer)
				peer.write(c.answer(id))
				var o outcome
				select {
				case o = <-done:
				case <-time.After(5 * time.Second):
					t.Fatalf("%s: the request still waits 5 s after its undecodable answer", c.name)
				}
				var pe *ProtocolError
				var ce *CodecError
				if !errors.As(o.err, &pe) || !errors.As(o.err, &ce) || !strings.Contains(pe.Message, "cannot be decoded") ||
					!strings.Contains(pe.Message, fmt.Sprintf("request %d on the %s channel", id, name)) || !strings.Contains(pe.Message, c.detail) {
					t.Fatalf("%s: the request failed with %#v (%v), want a *ProtocolError naming the decoding failure", c.name, o.err, o.err)
				}
				// Nothing was sent back: the next message the peer reads answers its own ping.
				peer.send(map[string]any{"jsonrpc": "2.0", "id": "p", "method": "ping"})
				if r := peer.read(); r["id"] != "p" || r["result"] != "pong" {
					t.Fatalf("%s: after the undecodable answer the peer read %v, want the answer to its ping", c.name, r)
				}
			}
		})
	}
}

// What is not a recovered answer to a pending request is answered -32700 (with the id of a
// request, or null) and fails nothing: the request still takes its real answer.
func TestUndecodableNonAnswersLeaveTheRequestPending(t *testing.T) {
	t.Parallel()
	sides := []struct {
		name    string
		framing Framing
		codec   Codec
		cases   map[string]func(id int64) ([]byte, any)
	}{
		{"control", LineDelimitedFraming{}, JSONCodec{}, map[string]func(int64) ([]byte, any){
			"unknown id": func(id int64) ([]byte, any) {
				return jsonAnswer(`{"jsonrpc":"2.0","id":ID,"result":[18446744073709551616]}`)(id + 1000), nil
			},
			"unknown string id": func(int64) ([]byte, any) {
				return []byte(`{"jsonrpc":"2.0","id":"1","result":[18446744073709551616]}`), nil
			},
			"not well-formed": func(id int64) ([]byte, any) { return jsonAnswer(`{"jsonrpc":"2.0","id":ID,"result":[1,}`)(id), nil },
			"with a method": func(id int64) ([]byte, any) {
				return jsonAnswer(`{"jsonrpc":"2.0","id":ID,"method":"m","result":[18446744073709551616]}`)(id), id
			},
			"neither result nor error": func(id int64) ([]byte, any) {
				return jsonAnswer(`{"jsonrpc":"2.0","id":ID,"params":[18446744073709551616]}`)(id), nil
			},
			"float id": func(id int64) ([]byte, any) {
				return []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d.0,"result":[18446744073709551616]}`, id)), nil
			},
		}},
		{"data", LengthPrefixedFraming{}, MessagePackCodec{}, map[string]func(int64) ([]byte, any){
			"unknown id": func(id int64) ([]byte, any) { return mpAnswer(id+100, "result", []byte{0xd4, 0x05, 0x01}), nil },
			"not well-formed": func(id int64) ([]byte, any) {
				b := mpAnswer(id, "result", []byte{0x92, 0xd4, 0x05, 0x01})
				return b, nil // an array of 2 holding 1 item: a truncated object
			},
			"trailing bytes": func(id int64) ([]byte, any) {
				return append(mpAnswer(id, "result", []byte{0xd4, 0x05, 0x01}), 0xc0), nil
			},
			"neither result nor error": func(id int64) ([]byte, any) { return mpAnswer(id, "params", []byte{0xd4, 0x05, 0x01}), nil },
		}},
	}
	for _, side := range sides {
		side := side
		t.Run(side.name, func(t *testing.T) {
			t.Parallel()
			ch, peer := channelWithPeer(t, side.name, side.framing, side.codec)
			for name, build := range side.cases {
				id, done := askPeer(t, ch, peer)
				payload, answeredID := build(id)
				peer.write(payload)
				r := peer.read()
				if errorCode(t, r) != CodeParseError || !sameValue(r["id"], answeredID) {
					t.Fatalf("%s: the channel sent %v, want -32700 with id %v", name, r, answeredID)
				}
				select {
				case o := <-done:
					t.Fatalf("%s: the request ended with %v, %v", name, o.result, o.err)
				default:
				}
				peer.send(map[string]any{"jsonrpc": "2.0", "id": id, "result": "late"})
				select {
				case o := <-done:
					if o.err != nil || o.result.Value() != "late" {
						t.Fatalf("%s: the request ended with %v, %v, want its real answer", name, o.result.Value(), o.err)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("%s: the real answer did not complete the request", name)
				}
			}
		})
	}
}

// A stream call whose answer does not decode fails with its output stream, which does not wait.
func TestUndecodableAnswerFailsAStreamCall(t *testing.T) {
	t.Parallel()
	ch, peer := channelWithPeer(t, "data", LengthPrefixedFraming{}, MessagePackCodec{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	call, err := ch.RequestStream(ctx, "produce", nil, StreamOptions{OutWindow: 4})
	if err != nil {
		t.Fatal(err)
	}
	req := peer.read()
	peer.write(mpAnswer(req["id"].(int64), "result", []byte{0xd4, 0x05, 0x01}))
	recvCtx, stop := context.WithTimeout(ctx, 5*time.Second)
	defer stop()
	var pe *ProtocolError
	if _, err := call.Out.Recv(recvCtx); !errors.As(err, &pe) {
		t.Fatalf("Recv: %v, want the *ProtocolError", err)
	}
	if _, err := call.Result(recvCtx); !errors.As(err, &pe) || !strings.Contains(pe.Message, "ext type") {
		t.Fatalf("Result: %v, want the *ProtocolError", err)
	}
}
