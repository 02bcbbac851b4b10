package aspectipc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/outframe"
)

// timeHooks carry a time.Time as {"__time__": RFC 3339 text} and a complex128 as
// {"__complex__": [re, im]}, and back. (JSON writes a time.Time itself, so only MessagePack needs
// the hook for it; neither can carry a complex number.)
func timeHooks() (func(any) (any, error), func(map[string]any) (any, error)) {
	encode := func(v any) (any, error) {
		switch x := v.(type) {
		case time.Time:
			return map[string]any{"__time__": x.Format(time.RFC3339Nano)}, nil
		case complex128:
			return map[string]any{"__complex__": []any{real(x), imag(x)}}, nil
		}
		return nil, fmt.Errorf("no form for %T", v)
	}
	decode := func(m map[string]any) (any, error) {
		if s, ok := m["__time__"].(string); ok && len(m) == 1 {
			return time.Parse(time.RFC3339Nano, s)
		}
		if c, ok := m["__complex__"].([]any); ok && len(m) == 1 && len(c) == 2 {
			return complex(c[0].(float64), c[1].(float64)), nil
		}
		return m, nil
	}
	return encode, decode
}

func hookedCodecs() []Codec {
	enc, dec := timeHooks()
	return []Codec{MessagePackCodec{EncodeHook: enc, DecodeHook: dec}, JSONCodec{EncodeHook: enc, DecodeHook: dec}}
}

func TestEncodeHookReplacesWhatTheWireCannotCarry(t *testing.T) {
	when := time.Date(2026, 11, 29, 1, 2, 3, 456789000, time.UTC)
	enc, _ := timeHooks()
	payload, err := MessagePackCodec{EncodeHook: enc}.Encode(map[string]any{"when": when, "n": 1})
	if err != nil {
		t.Fatal(err)
	}
	back, err := MessagePackCodec{}.Decode(payload)
	want := map[string]any{"when": map[string]any{"__time__": "2026-11-29T01:02:03.456789Z"}, "n": int64(1)}
	if err != nil || !reflect.DeepEqual(back, want) {
		t.Fatalf("got %#v, %v", back, err)
	}
	// Inside structs, and for a map with keys that are not strings (given whole to the hook).
	hook := func(v any) (any, error) {
		if m, ok := v.(map[int]string); ok {
			out := map[string]any{}
			for k, x := range m {
				out[fmt.Sprint(k)] = x
			}
			return out, nil
		}
		return enc(v)
	}
	payload, err = MessagePackCodec{EncodeHook: hook}.Encode([]any{shipment{Rows: []row{{7, when}}}, map[int]string{1: "a"}})
	back, _ = MessagePackCodec{}.Decode(payload)
	wantList := []any{
		map[string]any{"rows": []any{map[string]any{"id": int64(7), "when": map[string]any{"__time__": "2026-11-29T01:02:03.456789Z"}}}},
		map[string]any{"1": "a"},
	}
	if err != nil || !reflect.DeepEqual(back, wantList) {
		t.Fatalf("got %#v, %v", back, err)
	}
	// JSON writes a time.Time itself (encoding/json's RFC 3339): its hook is for binary and the like.
	hex := func(v any) (any, error) { return fmt.Sprintf("%x", v), nil }
	out, err := JSONCodec{EncodeHook: hex}.Encode(map[string]any{"b": []byte{1, 255}, "t": when})
	if err != nil || string(out) != `{"b":"01ff","t":"2026-11-29T01:02:03.456789Z"}` {
		t.Fatalf("json: %s, %v", out, err)
	}
}

func TestHooksRoundTripThroughBothCodecs(t *testing.T) {
	when := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	for _, codec := range hookedCodecs() {
		payload, err := codec.Encode([]any{map[string]any{"at": when, "c": 1.5 + 2i}, 3i})
		if err != nil {
			t.Fatalf("%s: %v", codec.Name(), err)
		}
		back, err := codec.Decode(payload)
		if err != nil {
			t.Fatalf("%s: %v", codec.Name(), err)
		}
		list := back.([]any)
		m := list[0].(map[string]any)
		if m["c"] != 1.5+2i || list[1] != 3i {
			t.Fatalf("%s: %#v", codec.Name(), back)
		}
		if at, ok := m["at"].(time.Time); codec.Name() == "msgpack" && (!ok || !at.Equal(when)) {
			t.Fatalf("%s: %#v", codec.Name(), back)
		}
	}
}

func TestEncodeHookAppliesAgainToWhatItReturns(t *testing.T) {
	when := time.Unix(0, 0).UTC()
	hook := func(v any) (any, error) {
		switch x := v.(type) {
		case complex128:
			return []any{real(x), when}, nil // the time needs the hook in turn
		case time.Time:
			return x.Unix(), nil
		}
		return v, nil // itself: the hook cannot help, and must not loop
	}
	out, err := MessagePackCodec{EncodeHook: hook}.Encode(complex(1.5, 2))
	if err != nil {
		t.Fatal(err)
	}
	if back, _ := (MessagePackCodec{}).Decode(out); !reflect.DeepEqual(back, []any{1.5, int64(0)}) {
		t.Fatalf("got %#v", back)
	}
	for _, codec := range []Codec{MessagePackCodec{EncodeHook: hook}, JSONCodec{EncodeHook: hook}} {
		_, err = codec.Encode(map[string]any{"c": make(chan int)})
		var ce *CodecError
		if !errors.As(err, &ce) || !strings.Contains(ce.Message, "encode hook returned a value it cannot encode") || ce.Path != "$.c" {
			t.Fatalf("%s: a hook that returns its argument: %v", codec.Name(), err)
		}
	}
}

func TestEncodeHookErrorNamesThePlace(t *testing.T) {
	sentinel := errors.New("no thanks")
	hook := func(any) (any, error) { return nil, sentinel }
	msg := JSONRPCProtocol{}.Request(IntID(1), "m", map[string]any{"rows": []any{0, 1, 2, map[string]any{"f": func() {}}}})
	for _, codec := range []Codec{MessagePackCodec{EncodeHook: hook}, JSONCodec{EncodeHook: hook}} {
		_, err := codec.Encode(msg)
		var ce *CodecError
		if !errors.As(err, &ce) || ce.Path != "$.params.rows[3].f" || !errors.Is(err, sentinel) ||
			!strings.Contains(ce.Message, "encode hook failed on func() at $.params.rows[3].f: no thanks") {
			t.Fatalf("%s: %v", codec.Name(), err)
		}
	}
}

type shipment struct {
	Rows []row `json:"rows"`
}

type row struct {
	ID   int       `json:"id"`
	When time.Time `json:"when"`
}

func TestCodecErrorNamesThePlaceAndTheConversion(t *testing.T) {
	rows := []row{{1, time.Time{}}, {2, time.Time{}}, {3, time.Time{}}, {4, time.Now()}}
	asMaps := []any{0, 1, 2, map[string]any{"when": time.Now()}}
	for _, params := range []any{map[string]any{"rows": asMaps}, shipment{Rows: rows}, &shipment{Rows: rows}} {
		_, err := MessagePackCodec{}.Encode(JSONRPCProtocol{}.Request(IntID(1), "m", params))
		var ce *CodecError
		want := "cannot encode time.Time at $.params.rows[0].when as MessagePack: convert it first (a time.Time to a string with t.Format(time.RFC3339Nano)"
		if _, isMap := params.(map[string]any); isMap {
			want = strings.Replace(want, "[0]", "[3]", 1)
		}
		if !errors.As(err, &ce) || !strings.HasPrefix(ce.Message, want) || !strings.HasSuffix(ce.Message, "or set EncodeHook on MessagePackCodec") {
			t.Fatalf("%T: %v", params, err)
		}
		if ce.Path != want[len("cannot encode time.Time at "):strings.Index(want, " as ")] {
			t.Fatalf("%T: path %q", params, ce.Path)
		}
	}
	for _, c := range []struct {
		value      any
		path, text string
	}{
		{map[string]any{"a b": []any{make(chan int)}}, `$["a b"][0]`, "cannot encode chan int at $[\"a b\"][0] as MessagePack: channels, functions"},
		{map[string]any{"counts": map[int]string{1: "x"}}, "$.counts", "map key 1 at $.counts is int: keys must be strings"},
		{map[string]any{"n": []any{new(big.Int).Lsh(big.NewInt(1), 70)}}, "$.n[0]", "integer 1180591620717411303424 at $.n[0] is outside [-2^63, 2^64-1]: send it as a string"},
		{map[string]any{"z": complex(1, 2)}, "$.z", "a complex number to a [real, imag] pair"},
		{map[string]any{"s": "\xff"}, "$.s", `string "\xff" at $.s is not valid UTF-8`},
		{time.Time{}, "$", "cannot encode time.Time at $ as MessagePack"},
	} {
		_, err := MessagePackCodec{}.Encode(c.value)
		var ce *CodecError
		if !errors.As(err, &ce) || ce.Path != c.path || !strings.Contains(ce.Message, c.text) {
			t.Errorf("%#v: %v (path %q)", c.value, err, ce.Path)
		}
	}
}

func TestJSONCodecErrorNamesThePlace(t *testing.T) {
	for _, c := range []struct {
		value      any
		path, text string
	}{
		{map[string]any{"x": []any{1.0, map[string]any{"y": 1.0 / zero()}}}, "$.x[1].y", "value at $.x[1].y: +Inf has no JSON form"},
		{map[string]any{"p": point{X: 1.0 / zero()}}, "$.p.x", "value at $.p.x: +Inf has no JSON form"},
		{map[string]any{"b": []byte{1}}, "$.b", "value at $.b: binary value ([]uint8) has no JSON form"},
		{map[string]any{"f": []any{func() {}}}, "$.f[0]", "cannot encode func() at $.f[0] as JSON: channels, functions and unsafe pointers are not supported"},
		{1.0 / zero(), "$", "+Inf has no JSON form"},
	} {
		_, err := JSONCodec{}.Encode(c.value)
		var ce *CodecError
		if !errors.As(err, &ce) || ce.Path != c.path || !strings.Contains(ce.Message, c.text) {
			t.Errorf("%#v: %v", c.value, err)
		}
	}
}

func zero() float64 { return 0 }

func TestDecodeHookSeesEveryMapInnermostFirst(t *testing.T) {
	msg := JSONRPCProtocol{}.Request(IntID(1), "m", map[string]any{"a": []any{map[string]any{"b": 1}}, "c": map[string]any{}})
	for _, plain := range []Codec{MessagePackCodec{}, JSONCodec{}} {
		payload, _ := plain.Encode(msg)
		var seen []string
		hook := func(m map[string]any) (any, error) {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			seen = append(seen, strings.Join(sortedStrings(keys), ","))
			if _, ok := m["b"]; ok {
				return "B", nil
			}
			return m, nil
		}
		var codec Codec = MessagePackCodec{DecodeHook: hook}
		if plain.Name() == "json" {
			codec = JSONCodec{DecodeHook: hook}
		}
		v, err := codec.Decode(payload)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.(map[string]any)["params"].(map[string]any)["a"]; !reflect.DeepEqual(got, []any{"B"}) {
			t.Fatalf("%s: %#v", plain.Name(), got)
		}
		if n := len(seen); n != 4 || seen[n-1] != "id,jsonrpc,method,params" || seen[n-2] != "a,c" {
			t.Fatalf("%s: maps seen %q", plain.Name(), seen)
		}
	}
}

func sortedStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func TestDecodeHookErrorIsACodecErrorWithThePlace(t *testing.T) {
	sentinel := errors.New("bad array")
	hook := func(m map[string]any) (any, error) {
		if _, ok := m["__ndarray__"]; ok {
			return nil, sentinel
		}
		return m, nil
	}
	msg := JSONRPCProtocol{}.Request(IntID(9), "m", map[string]any{"x": []any{map[string]any{"__ndarray__": 1}}})
	for _, codec := range []Codec{MessagePackCodec{DecodeHook: hook}, JSONCodec{DecodeHook: hook}} {
		payload, _ := codec.Encode(msg)
		_, err := codec.Decode(payload)
		var ce *CodecError
		if !errors.As(err, &ce) || ce.Path != "$.params.x[0]" || !errors.Is(err, sentinel) ||
			!strings.Contains(ce.Message, "decode hook failed at $.params.x[0]: bad array") {
			t.Fatalf("%s: %v", codec.Name(), err)
		}
		// The bytes are well formed: the request's id is recovered for the -32700 answer.
		if id := parseErrorID(codec, payload, err); id != IntID(9) {
			t.Fatalf("%s: id %v", codec.Name(), id)
		}
	}
}

func TestHookedResponseHasTheBytesOfTheMap(t *testing.T) {
	enc, _ := timeHooks()
	codec := MessagePackCodec{EncodeHook: enc}
	result := map[string]any{"at": time.Unix(5, 0).UTC(), "p": Params{value: []any{1}, present: true}}
	want, err := codec.Encode(JSONRPCProtocol{}.Response(StringID("r"), result))
	if err != nil {
		t.Fatal(err)
	}
	f := outframe.Get(0)
	defer f.Release()
	if err := codec.encodeInto(f, wireResponse{id: StringID("r"), result: result}); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, v := range f.Vectors() {
		got = append(got, v...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%x, want %x", got, want)
	}
	// Without the hook the response fails with the place of the value.
	err = MessagePackCodec{}.encodeInto(f, wireResponse{id: IntID(1), result: result})
	var ce *CodecError
	if !errors.As(err, &ce) || ce.Path != "$.result.at" {
		t.Fatalf("%v", err)
	}
}

func TestHooksWorkAcrossAChannel(t *testing.T) {
	t.Parallel()
	for _, codec := range hookedCodecs() {
		framing := Framing(LengthPrefixedFraming{})
		if codec.Name() == "json" {
			framing = LineDelimitedFraming{}
		}
		double := func(_ context.Context, p Params) (any, error) {
			c, ok := p.Value().(map[string]any)["c"].(complex128)
			if !ok {
				return nil, fmt.Errorf("params %#v", p.Value())
			}
			return []any{2 * c}, nil
		}
		client, _ := channelPair(t, framing, codec, nil, HandlerTable{"double": double})
		result, err := client.Request(context.Background(), "double", map[string]any{"c": 1 - 2i})
		if err != nil || !reflect.DeepEqual(result.Value(), []any{2 - 4i}) {
			t.Fatalf("%s: %#v, %v", codec.Name(), result.Value(), err)
		}
	}
	plain, _ := channelPair(t, LengthPrefixedFraming{}, MessagePackCodec{}, nil, nil)
	_, err := plain.Request(context.Background(), "later", map[string]any{"rows": []any{map[string]any{"when": time.Now()}}})
	var ce *CodecError
	if !errors.As(err, &ce) || ce.Path != "$.params.rows[0].when" {
		t.Fatalf("without hooks: %v", err)
	}
}

func TestParamsDecodeStoresWhatADecodeHookMade(t *testing.T) {
	_, decode := timeHooks()
	codec := MessagePackCodec{DecodeHook: decode}
	when := time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)
	payload, _ := MessagePackCodec{}.Encode(map[string]any{"c": map[string]any{"__complex__": []any{1.0, 2.0}}, "when": map[string]any{"__time__": when.Format(time.RFC3339)}})
	value, err := codec.Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	var target struct {
		C    complex128 `json:"c"`
		When time.Time  `json:"when"`
	}
	if err := (Params{value: value, present: true}).Decode(&target); err != nil || target.C != 1+2i || !target.When.Equal(when) {
		t.Fatalf("%+v, %v", target, err)
	}
	var wrong struct {
		C string `json:"c"`
	}
	if err := (Params{value: value, present: true}).Decode(&wrong); err == nil {
		t.Fatal("a complex128 stored into a string")
	}
}

type withBinary struct {
	Name  string         `json:"name"`
	Blob  []byte         `json:"blob"`
	Skip  []byte         `json:"skip,omitempty"`
	When  time.Time      `json:"when"`
	Extra map[string]any `json:"extra"`
	Ratio float64        `json:"ratio"`
}

func TestJSONEncodeHookReachesInsideStructs(t *testing.T) {
	hex := func(v any) (any, error) {
		if b, ok := v.([]byte); ok {
			return fmt.Sprintf("%x", b), nil
		}
		return nil, fmt.Errorf("no form for %T", v)
	}
	when := time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)
	value := []any{&withBinary{Name: "a", Blob: []byte{1, 2}, When: when, Extra: map[string]any{"c": []byte{3}}, Ratio: 2}}
	out, err := JSONCodec{EncodeHook: hex}.Encode(value)
	want := `[{"name":"a","blob":"0102","when":"2026-11-29T01:00:00Z","extra":{"c":"03"},"ratio":2.0}]`
	if err != nil || string(out) != want {
		t.Fatalf("got %s, %v\nwant %s", out, err, want)
	}
	// What encoding/json accepts is still written by it, hook or not.
	plain := withBinary{Name: "b", When: when, Ratio: 2}
	withHook, err1 := JSONCodec{EncodeHook: hex}.Encode(plain)
	without, err2 := JSONCodec{}.Encode(plain)
	if err1 != nil || err2 != nil || !bytes.Equal(withHook, without) {
		t.Fatalf("%s, %v; %s, %v", withHook, err1, without, err2)
	}
	_, err = JSONCodec{EncodeHook: hex}.Encode(map[string]any{"s": withBinary{Blob: []byte{1}, Ratio: 1.0 / zero()}})
	var ce *CodecError
	if !errors.As(err, &ce) || ce.Path != "$.s.ratio" {
		t.Fatalf("%v", err)
	}
}
