package aspectipc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A type with its own encoding arrives as the same value whichever channel it is sent on
// (PROTOCOL.md 3): both codecs follow encoding/json's rules, MarshalJSON before MarshalText, the
// methods of the pointer for an addressable value only, nil for a nil pointer without a call.

// secret's MarshalJSON is its only exported form: by kind it would be {}.
type secret struct{ v int }

func (s secret) MarshalJSON() ([]byte, error) { return []byte(fmt.Sprint(s.v)), nil }

// money has a value receiver.
type money struct{ Cents int64 }

func (m money) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf(`"$%d.%02d"`, m.Cents/100, m.Cents%100)), nil
}

// ptrMoney has a pointer receiver, so encoding/json uses it only for a pointer or an addressable
// value.
type ptrMoney struct{ Cents int64 }

func (m *ptrMoney) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf(`"%d cents"`, m.Cents)), nil
}

// textLevel is a TextMarshaler.
type textLevel int

func (l textLevel) MarshalText() ([]byte, error) { return []byte(fmt.Sprintf("L%d", int(l))), nil }

// ptrTextLevel is a TextMarshaler by its pointer.
type ptrTextLevel int

func (l *ptrTextLevel) MarshalText() ([]byte, error) { return []byte(fmt.Sprintf("P%d", int(*l))), nil }

// both has MarshalJSON and MarshalText: MarshalJSON wins.
type both struct{}

func (both) MarshalJSON() ([]byte, error) { return []byte(`{"from":"json"}`), nil }
func (both) MarshalText() ([]byte, error) { return []byte("text"), nil }

// numbers returns JSON text with an integer, a float that is integral, and a big unsigned integer.
type numbers struct{}

func (numbers) MarshalJSON() ([]byte, error) {
	return []byte(` [1, 1.0, -0.0, 2.5e3, 18446744073709551615, -9223372036854775808, "\u00e9\ud83d\ude00"] `), nil
}

type withFields struct {
	M    money        `json:"m"`
	P    ptrMoney     `json:"p"`
	PP   *ptrMoney    `json:"pp"`
	L    textLevel    `json:"l"`
	PL   ptrTextLevel `json:"pl"`
	Nil  *money       `json:"nil"`
	NilP *ptrMoney    `json:"nilp"`
	Raw  json.RawMessage
}

// embedsMoney has money's MarshalJSON promoted: the whole struct is written by it.
type embedsMoney struct {
	money
	Other int
}

func TestMarshalersArriveAsTheSameValueOnBothChannels(t *testing.T) {
	pl := ptrTextLevel(4)
	fields := withFields{M: money{1234}, P: ptrMoney{5}, PP: &ptrMoney{6}, L: 3, PL: 4, Raw: json.RawMessage(`{"a":1}`)}
	for _, c := range []struct {
		name  string
		value any
		want  any
	}{
		{"value receiver", secret{42}, int64(42)},
		{"value receiver, text", money{1234}, "$12.34"},
		{"pointer to a value receiver", &money{1234}, "$12.34"},
		{"nil pointer", (*money)(nil), nil},
		{"RawMessage", json.RawMessage(`{"a":1,"b":[true,null]}`), map[string]any{"a": int64(1), "b": []any{true, nil}}},
		{"nil RawMessage", json.RawMessage(nil), nil},
		{"numbers keep their kind", numbers{}, []any{int64(1), 1.0, math.Copysign(0, -1), 2500.0, uint64(1<<64 - 1), int64(-1 << 63), "é😀"}},
		{"MarshalJSON before MarshalText", both{}, map[string]any{"from": "json"}},
		{"TextMarshaler", textLevel(3), "L3"},
		{"pointer receiver given by value: not called", ptrMoney{5}, map[string]any{"Cents": int64(5)}},
		{"pointer receiver, pointer", &ptrMoney{5}, "5 cents"},
		{"nil pointer with a pointer receiver", (*ptrMoney)(nil), nil},
		{"pointer receiver, slice elements (addressable)", []ptrMoney{{1}, {2}}, []any{"1 cents", "2 cents"}},
		{"pointer receiver, array by value (not addressable)", [1]ptrMoney{{1}}, []any{map[string]any{"Cents": int64(1)}}},
		{"text by pointer receiver, pointer", &pl, "P4"},
		{"text by pointer receiver, by value", ptrTextLevel(4), int64(4)},
		{"text by pointer receiver, slice element", []ptrTextLevel{7}, []any{"P7"}},
		{"promoted MarshalJSON", embedsMoney{money{1}, 2}, "$0.01"},
		{"struct by value: fields not addressable", fields, map[string]any{
			"m": "$12.34", "p": map[string]any{"Cents": int64(5)}, "pp": "6 cents", "l": "L3", "pl": int64(4),
			"nil": nil, "nilp": nil, "Raw": map[string]any{"a": int64(1)}}},
		{"struct by pointer: fields addressable", &fields, map[string]any{
			"m": "$12.34", "p": "5 cents", "pp": "6 cents", "l": "L3", "pl": "P4",
			"nil": nil, "nilp": nil, "Raw": map[string]any{"a": int64(1)}}},
		{"in a map", map[string]money{"a": {1}}, map[string]any{"a": "$0.01"}},
		{"pointer receiver in a map: not addressable", map[string]ptrMoney{"a": {1}}, map[string]any{"a": map[string]any{"Cents": int64(1)}}},
		{"big.Int by value", map[string]any{"n": *big.NewInt(5), "s": []big.Int{*big.NewInt(6)}}, map[string]any{"n": int64(5), "s": []any{int64(6)}}},
		{"big.Int in a struct by value", struct {
			N big.Int `json:"n"`
		}{*big.NewInt(7)}, map[string]any{"n": int64(7)}},
	} {
		for _, codec := range []Codec{JSONCodec{}, MessagePackCodec{}} {
			payload, err := codec.Encode([]any{c.value})
			if err != nil {
				t.Fatalf("%s, %s: %v", c.name, codec.Name(), err)
			}
			got, err := codec.Decode(payload)
			if err != nil {
				t.Fatalf("%s, %s: %v", c.name, codec.Name(), err)
			}
			if want := []any{c.want}; !sameValue(got, want) || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s, %s: %#v, want %#v", c.name, codec.Name(), got, want)
			}
		}
	}
}

// The encode hook is asked only for what has no form: a type with its own encoding has one, on
// both channels (time.Time excepted on MessagePack: it is refused, for the hook).
func TestEncodeHookIsNotAskedForMarshalers(t *testing.T) {
	var asked []string
	hook := func(v any) (any, error) {
		asked = append(asked, fmt.Sprintf("%T", v))
		return "hooked", nil
	}
	for _, codec := range []Codec{JSONCodec{EncodeHook: hook}, MessagePackCodec{EncodeHook: hook}} {
		asked = nil
		payload, err := codec.Encode(map[string]any{"m": money{1}, "r": json.RawMessage(`2`), "l": textLevel(1), "c": complex(1, 2)})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := codec.Decode(payload)
		want := map[string]any{"m": "$0.01", "r": int64(2), "l": "L1", "c": "hooked"}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(asked, []string{"complex128"}) {
			t.Fatalf("%s: %#v, hook asked for %v", codec.Name(), got, asked)
		}
	}
}

type failingMarshaler struct{}

var errMarshal = errors.New("marshal failed")

func (failingMarshaler) MarshalJSON() ([]byte, error) { return nil, errMarshal }

type panickingMarshaler struct{ with any }

func (p panickingMarshaler) MarshalJSON() ([]byte, error) { panic(p.with) }

type panickingText struct{}

func (panickingText) MarshalText() ([]byte, error) { panic("text panic") }

type rawText string // what its MarshalJSON returns

func (r rawText) MarshalJSON() ([]byte, error) { return []byte(r), nil }

// A method that fails, panics or returns what the protocol refuses fails the encoding with a
// *CodecError, on both channels; the error of the method is its cause.
func TestMarshalerFailuresAreCodecErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		value any
		json  string // what the JSON codec says
		mp    string // what the MessagePack codec says
	}{
		{"error", failingMarshaler{}, "marshal failed", "aspectipc.failingMarshaler at $.v[0]: MarshalJSON failed: marshal failed"},
		{"panic", panickingMarshaler{"boom"}, "panicked: boom", "aspectipc.panickingMarshaler at $.v[0]: MarshalJSON panicked: boom"},
		{"panic with an error", panickingMarshaler{errMarshal}, "panicked: marshal failed", "MarshalJSON panicked: marshal failed"},
		{"text panic", panickingText{}, "panicked: text panic", "aspectipc.panickingText at $.v[0]: MarshalText panicked: text panic"},
		{"invalid JSON", rawText(`{"a":`), "error calling MarshalJSON", "MarshalJSON returned invalid JSON"},
		{"two values", rawText(`1 2`), "error calling MarshalJSON", "MarshalJSON returned invalid JSON"},
		{"empty", rawText(``), "error calling MarshalJSON", "MarshalJSON returned no JSON text"},
		{"lone surrogate", rawText(`"\ud800"`), "lone surrogate", "lone surrogate"},
		{"invalid UTF-8", rawText("\"\xff\""), "a MarshalJSON method returned text that is not valid UTF-8", "MarshalJSON returned text that is not valid UTF-8"},
		{"integer out of range", rawText(`18446744073709551616`),
			"integer 18446744073709551616 at $.v[0] is outside [-2^63, 2^64-1]: send it as a string",
			"integer 18446744073709551616 at $.v[0] is outside [-2^63, 2^64-1]: send it as a string"},
		{"negative integer out of range, nested", rawText(`{"a b":[0,{"k":-9223372036854775809}]}`),
			`integer -9223372036854775809 at $.v[0]["a b"][1].k is outside [-2^63, 2^64-1]: send it as a string`,
			`integer -9223372036854775809 at $.v[0]["a b"][1].k is outside [-2^63, 2^64-1]: send it as a string`},
		{"float out of range", rawText(`["1e400",1e400]`),
			"number 1e400 at $.v[0][1] does not fit a 64-bit float", "number 1e400 at $.v[0][1] does not fit a 64-bit float"},
		{"too deep", rawText(strings.Repeat("[", 600) + strings.Repeat("]", 600)), "nesting deeper than 512", "nesting deeper than 512"},
	} {
		for _, codec := range []Codec{JSONCodec{}, MessagePackCodec{}} {
			want := c.mp
			if codec.Name() == "json" {
				want = c.json
			}
			_, err := codec.Encode(map[string]any{"v": []any{c.value}})
			var ce *CodecError
			if !errors.As(err, &ce) || !strings.Contains(ce.Message, want) {
				t.Fatalf("%s, %s: %v, want a *CodecError saying %q", c.name, codec.Name(), err, want)
			}
			if c.value == (failingMarshaler{}) || c.value == (panickingMarshaler{errMarshal}) {
				if !errors.Is(err, errMarshal) {
					t.Fatalf("%s, %s: %v does not wrap the method's error", c.name, codec.Name(), err)
				}
			}
		}
	}
}

// A number a MarshalJSON writes that the protocol has no form for is refused when sending, on
// control as on data, in the same words: a Request fails with a *CodecError naming its place in
// the message, nothing is written, and the channel goes on.
func TestMarshaledNumberOutOfRangeIsRefusedOnBothChannels(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		framing Framing
		codec   Codec
	}{{LineDelimitedFraming{}, JSONCodec{}}, {LengthPrefixedFraming{}, MessagePackCodec{}}} {
		a, peer := socketPair(t)
		ch, err := NewChannelBuilder().WithName("test").WithTransport(a).WithFraming(c.framing).WithCodec(c.codec).Build()
		if err != nil {
			t.Fatal(err)
		}
		go ch.Run(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // if sent, nobody answers
		_, err = ch.Request(ctx, "m", map[string]any{"n": rawText(`[18446744073709551616]`)})
		cancel()
		var ce *CodecError
		want := "integer 18446744073709551616 at $.params.n[0] is outside [-2^63, 2^64-1]: send it as a string"
		if !errors.As(err, &ce) || ce.Message != want || ce.Path != "$.params.n[0]" || ce.Codec != c.codec.Name() {
			t.Fatalf("%s: %v, want a *CodecError %q", c.codec.Name(), err, want)
		}
		if err := ch.Notify(context.Background(), "after", nil); err != nil {
			t.Fatal(err)
		}
		if m := firstMessage(t, peer, c.framing, c.codec); m["method"] != "after" {
			t.Fatalf("%s: the first message written is %v, not the notification after the refused request", c.codec.Name(), m)
		}
		ch.Close()
		peer.Close()
	}
}

// firstMessage reads the first message written on r.
func firstMessage(t *testing.T, r io.Reader, framing Framing, codec Codec) map[string]any {
	t.Helper()
	dec := framing.NewDecoder()
	buf := make([]byte, 4096)
	for {
		if frame, err := dec.Next(); err == nil {
			v, err := codec.Decode(frame)
			if err != nil {
				t.Fatal(err)
			}
			return v.(map[string]any)
		}
		n, err := r.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		dec.Feed(buf[:n])
	}
}
