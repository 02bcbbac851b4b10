package aspectipc

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"math/rand"
	"strings"
	"testing"
)

// Codec rules of spec 1.1 that the shared vectors cannot hold (a Go string with invalid UTF-8,
// cycles, struct and json.Marshaler values) or that deserve a wider sweep than they give.

func isCodecError(err error) bool {
	var ce *CodecError
	return errors.As(err, &ce)
}

func TestEncodersRefuseInvalidUTF8AndLoneSurrogates(t *testing.T) {
	type tagged struct {
		Name string `json:"name"`
	}
	// "\xed\xa0\x80" is U+D800 encoded as if it were a character: not valid UTF-8 for Go either.
	for _, bad := range []string{"a\xffb", "a\xed\xa0\x80b", "\xed\xbf\xbf"} {
		values := map[string]any{
			"value":      []any{bad},
			"map key":    map[string]any{bad: 1},
			"struct":     tagged{Name: bad},
			"typed map":  map[string]string{"k": bad},
			"nested any": map[string]any{"a": []any{map[string]any{"b": bad}}},
		}
		for what, v := range values {
			for _, codec := range []Codec{JSONCodec{}, MessagePackCodec{}} {
				if out, err := codec.Encode(v); !isCodecError(err) || out != nil {
					t.Errorf("%s %s %q: got %q, %v; want a codec error", codec.Name(), what, bad, out, err)
				}
			}
		}
	}
	// What a json.Marshaler writes is checked too: it may hold an escaped lone surrogate.
	if out, err := (JSONCodec{}).Encode([]any{json.RawMessage(`"\ud800"`)}); !isCodecError(err) {
		t.Errorf("raw lone surrogate: got %s, %v", out, err)
	}
	if out, err := (JSONCodec{}).Encode([]any{json.RawMessage(`"\ud83d\ude00"`)}); err != nil || string(out) != `["\ud83d\ude00"]` {
		t.Errorf("raw surrogate pair: got %s, %v", out, err)
	}
}

func TestJSONDecoderRefusesLoneSurrogatesAnywhere(t *testing.T) {
	for _, text := range []string{`["\ud800"]`, `{"\udc00":1}`, `["a\uDBFFb"]`, `["\ud800\u0041"]`, `["\\\ud800"]`} {
		if v, err := (JSONCodec{}).Decode([]byte(text)); !isCodecError(err) {
			t.Errorf("%s: got %#v, %v; want a codec error", text, v, err)
		}
	}
	// An escaped backslash followed by "ud800" is not an escape.
	for text, want := range map[string]string{`["\\ud800"]`: `\ud800`, `["\ud83d\ude00"]`: "\U0001F600", `["\ue000"]`: "\ue000"} {
		v, err := (JSONCodec{}).Decode([]byte(text))
		if err != nil || !sameValue(v, []any{want}) {
			t.Errorf("%s: got %#v, %v; want %q", text, v, err, want)
		}
	}
}

func TestJSONFloatsStayFloatsBitForBit(t *testing.T) {
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 1.5, 0.1, 1e21, 1e20, 1e-6, 1e-7, 123456789, 5e-324,
		math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 9007199254740993, 1 << 63}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		floats = append(floats, math.Float64frombits(rng.Uint64()))
	}
	for _, f := range floats {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		out, err := (JSONCodec{}).Encode([]any{f})
		if err != nil {
			t.Fatalf("%v: %v", f, err)
		}
		v, err := (JSONCodec{}).Decode(out)
		got, isFloat := v.([]any)[0].(float64)
		if err != nil || !isFloat || math.Float64bits(got) != math.Float64bits(f) {
			t.Fatalf("%v (bits %x) was written %s and read back as %#v, %v", f, math.Float64bits(f), out, v, err)
		}
	}
	if out, _ := (JSONCodec{}).Encode([]any{1.0, math.Copysign(0, -1), 1e-7}); string(out) != "[1.0,-0.0,1e-7]" {
		t.Fatalf("got %s", out)
	}
}

func TestJSONIntegersExactAtTheEdges(t *testing.T) {
	values := []any{int64(math.MinInt64), int64(math.MaxInt64), uint64(math.MaxUint64), int64(-9007199254740993)}
	out, err := (JSONCodec{}).Encode(values)
	if err != nil || string(out) != "[-9223372036854775808,9223372036854775807,18446744073709551615,-9007199254740993]" {
		t.Fatalf("got %s, %v", out, err)
	}
	if v, err := (JSONCodec{}).Decode(out); err != nil || !sameValue(v, values) {
		t.Fatalf("read back %#v, %v", v, err)
	}
	huge, _ := new(big.Int).SetString("18446744073709551616", 10)
	for _, v := range []any{huge, *huge, json.Number("18446744073709551616"), struct{ N *big.Int }{huge}} {
		if out, err := (JSONCodec{}).Encode(v); !isCodecError(err) {
			t.Errorf("%v: got %s, %v; want a codec error", v, out, err)
		}
	}
}

// nestedArrays returns n nested []any around a null: depth n.
func nestedArrays(n int) any {
	var v any
	for i := 0; i < n; i++ {
		v = []any{v}
	}
	return v
}

type nestedStruct struct {
	Next *nestedStruct `json:"next,omitempty"`
}

func nestedStructs(n int) *nestedStruct {
	var s *nestedStruct
	for i := 0; i < n; i++ {
		s = &nestedStruct{Next: s}
	}
	return s
}

func TestNestingLimitOnEncode(t *testing.T) {
	cyclic := []any{nil}
	cyclic[0] = cyclic
	cyclicMap := map[string]any{}
	cyclicMap["self"] = cyclicMap
	for _, codec := range []Codec{JSONCodec{}, MessagePackCodec{}} {
		for _, v := range []any{nestedArrays(512), nestedStructs(512)} {
			if _, err := codec.Encode(v); err != nil {
				t.Errorf("%s, depth 512: %v", codec.Name(), err)
			}
		}
		for what, v := range map[string]any{"arrays": nestedArrays(513), "structs": nestedStructs(513), "a cyclic slice": cyclic, "a cyclic map": cyclicMap} {
			if out, err := codec.Encode(v); !isCodecError(err) || out != nil {
				t.Errorf("%s, %s: got %d bytes, %v; want a codec error", codec.Name(), what, len(out), err)
			}
		}
	}
	// Many pointers side by side are not a deep value.
	pointers := make([]*int64, 20000)
	for i := range pointers {
		pointers[i] = new(int64)
	}
	for _, codec := range []Codec{JSONCodec{}, MessagePackCodec{}} {
		if _, err := codec.Encode(pointers); err != nil {
			t.Errorf("%s, 20000 pointers: %v", codec.Name(), err)
		}
	}
	// A message is counted from its own map: params 511 deep make a message 512 deep.
	for _, codec := range []Codec{JSONCodec{}, MessagePackCodec{}} {
		msg := JSONRPCProtocol{}.Request(IntID(1), "m", nestedArrays(511))
		if _, err := codec.Encode(msg); err != nil {
			t.Errorf("%s: a message 512 deep: %v", codec.Name(), err)
		}
		msg = JSONRPCProtocol{}.Request(IntID(1), "m", nestedArrays(512))
		if _, err := codec.Encode(msg); !isCodecError(err) {
			t.Errorf("%s: a message 513 deep: %v", codec.Name(), err)
		}
	}
}

func TestNestingLimitOnDecode(t *testing.T) {
	for _, n := range []int{513, 10_000, 100_000} {
		text := strings.Repeat("[", n) + strings.Repeat("]", n)
		if _, err := (JSONCodec{}).Decode([]byte(text)); !isCodecError(err) {
			t.Errorf("json, %d levels: %v", n, err)
		}
		frame := append([]byte(strings.Repeat("\x91", n-1)), 0x90)
		if _, err := (MessagePackCodec{}).Decode(frame); !isCodecError(err) {
			t.Errorf("msgpack, %d levels: %v", n, err)
		}
	}
	if _, err := (JSONCodec{}).Decode([]byte(strings.Repeat("[", 512) + strings.Repeat("]", 512))); err != nil {
		t.Errorf("json, 512 levels: %v", err)
	}
}

func TestValidJSONAgreesWithEncodingJSON(t *testing.T) {
	texts := []string{`1`, ` {"a" : [1, 2.5e-3, "x\n", true, null, {}]} `, `[]`, `{}`, `"\u00e9"`, `-0`, `0.0`,
		`01`, `1.`, `.5`, `1e`, `[1,]`, `{"a":1,}`, `{"a"}`, `{1:2}`, `["\x"]`, "[\"\t\"]", `[1 2]`, `{} {}`,
		`tru`, `nul`, `[`, `]`, `"abc`, `{"a":1`, ``, ` `, `-`, `--1`, `1e+`, `[1e5]`, `"\u12"`}
	for _, text := range texts {
		if got, want := validJSON([]byte(text)), json.Valid([]byte(text)); got != want {
			t.Errorf("%q: validJSON %v, encoding/json %v", text, got, want)
		}
	}
}

func TestSizeErrorsStateExactByteCounts(t *testing.T) {
	cases := map[*FramingError]string{
		{Kind: FrameTooLarge, Size: 4097, Limit: 4096}:     "frame of 4097 bytes exceeds max_frame_size of 4096 bytes",
		{Kind: LineTooLong, Size: 0, Limit: 1048576}:       "line of more than 1048576 bytes exceeds max_line_length of 1048576 bytes",
		{Kind: LineTooLong, Size: 1048577, Limit: 1048576}: "line of 1048577 bytes exceeds max_line_length of 1048576 bytes",
	}
	for fe, want := range cases {
		what := "frame"
		if fe.Kind == LineTooLong {
			what = "line"
		}
		e := tooLargeError(what, fe)
		wantData := map[string]any{"limit": fe.Limit}
		if fe.Size > 0 {
			wantData["size"] = fe.Size
		}
		if e.Code != CodeMessageTooLarge || e.Message != want || !sameValue(e.Data, wantData) || !strings.Contains(fe.Error(), want) {
			t.Errorf("got %q %v (local: %q), want %q %v", e.Message, e.Data, fe.Error(), want, wantData)
		}
	}
	// An over-long line detected before its end: only "more than" is known.
	dec := LineDelimitedFraming{MaxLineLength: 1024}.NewDecoder()
	dec.Feed([]byte(strings.Repeat("x", 1030)))
	var fe *FramingError
	if _, err := dec.Next(); !errors.As(err, &fe) || fe.Size != 0 || fe.Limit != 1024 {
		t.Fatalf("got %v", err)
	}
}
