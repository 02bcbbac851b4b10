package aspectipc

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/outframe"
)

type sample struct {
	Name    string         `json:"name"`
	Count   int32          `json:"count"`
	Ratio   float32        `json:"ratio"`
	Blob    []byte         `json:"blob,omitempty"`
	Skipped string         `json:"-"`
	Extra   map[string]int `json:"extra,omitempty"`
}

func TestMessagePackEncodesStructsWithTheMapping(t *testing.T) {
	out, err := MessagePackCodec{}.Encode(sample{Name: "a", Count: 300, Ratio: 0.5, Blob: []byte{1}, Skipped: "no"})
	if err != nil {
		t.Fatal(err)
	}
	// Keys sorted, the int32 in its shortest form (uint 16), the float32 widened to float 64,
	// []byte as bin, the "-" field left out.
	want := "84a4626c6f62c40101a5636f756e74cd012ca46e616d65a161a5726174696fcb3fe0000000000000"
	if hex.EncodeToString(out) != want {
		t.Fatalf("got %x\nwant %s", out, want)
	}
	var back sample
	if err := (MessagePackCodec{}).Unmarshal(out, &back); err != nil || back.Name != "a" || back.Count != 300 || back.Ratio != 0.5 || back.Blob[0] != 1 {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
}

func TestMessagePackRefusesValuesOutsideTheMapping(t *testing.T) {
	for name, value := range map[string]any{
		"time (an ext type)":   struct{ At time.Time }{time.Now()},
		"int keys":             map[int]string{1: "a"},
		"nested int keys":      struct{ M map[int]int }{map[int]int{1: 2}},
		"invalid UTF-8 string": "\xff",
		"channel":              make(chan int),
		"complex":              complex(1, 2),
	} {
		out, err := MessagePackCodec{}.Encode(value)
		var ce *CodecError
		if !errors.As(err, &ce) || out != nil {
			t.Errorf("%s: got %x, %v; want a codec error", name, out, err)
		}
	}
}

func TestMessagePackUnsignedRoundTrip(t *testing.T) {
	out, err := MessagePackCodec{}.Encode(map[string]any{"u": uint64(math.MaxUint64), "i": int64(math.MinInt64)})
	if err != nil {
		t.Fatal(err)
	}
	var target struct {
		U uint64 `json:"u"`
		I int64  `json:"i"`
	}
	if err := (MessagePackCodec{}).Unmarshal(out, &target); err != nil || target.U != math.MaxUint64 || target.I != math.MinInt64 {
		t.Fatalf("got %+v, %v", target, err)
	}
}

// TestDecodersDoNotAllocateWhatHeadersDeclare feeds headers that declare gigabytes: the decoders
// must fail from the bytes present, allocating next to nothing.
func TestDecodersDoNotAllocateWhatHeadersDeclare(t *testing.T) {
	inputs := map[string][]byte{
		"msgpack array 32":  {0xdd, 0xff, 0xff, 0xff, 0xff},
		"msgpack str 32":    {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'},
		"msgpack map 32":    {0xdf, 0xff, 0xff, 0xff, 0xff},
		"msgpack bin 32":    {0xc6, 0xff, 0xff, 0xff, 0xff},
		"nested array head": {0x91, 0xdd, 0x7f, 0xff, 0xff, 0xff},
	}
	for name, input := range inputs {
		allocated := bytesAllocated(func() {
			if _, err := (MessagePackCodec{}).Decode(input); err == nil {
				t.Errorf("%s: decoded", name)
			}
		})
		if allocated > 64<<10 {
			t.Errorf("%s: allocated %d bytes", name, allocated)
		}
	}
	allocated := bytesAllocated(func() {
		dec := LengthPrefixedFraming{}.NewDecoder()
		dec.Feed([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
		var fe *FramingError
		if _, err := dec.Next(); !errors.As(err, &fe) || fe.Kind != FrameTooLarge {
			t.Errorf("oversized header: %v", err)
		}
	})
	if allocated > 64<<10 {
		t.Errorf("length-prefixed decoder allocated %d bytes", allocated)
	}
}

func bytesAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestMessagePackNesting(t *testing.T) {
	deep := func(n int) []byte {
		return append([]byte(strings.Repeat("\x91", n)), 0xc0)
	}
	if _, err := (MessagePackCodec{}).Decode(deep(512)); err != nil {
		t.Fatalf("512 levels: %v", err)
	}
	var ce *CodecError
	if _, err := (MessagePackCodec{}).Decode(deep(100_000)); !errors.As(err, &ce) {
		t.Fatalf("100000 levels: %v", err)
	}
}

func TestJSONCodecRefusesWhatJSONCannotCarry(t *testing.T) {
	for name, value := range map[string]any{
		"bytes":           []byte("x"),
		"bytes in struct": sample{Blob: []byte{1}},
		"nested bytes":    map[string]any{"a": []any{[]byte{1}}},
		"NaN":             []any{math.NaN()},
		"+Inf in struct":  struct{ F float64 }{math.Inf(1)},
	} {
		out, err := JSONCodec{}.Encode(value)
		var ce *CodecError
		if !errors.As(err, &ce) || out != nil {
			t.Errorf("%s: got %s, %v; want a codec error", name, out, err)
		}
	}
	var ce *CodecError
	_, err := JSONCodec{}.Encode([]byte("x"))
	if errors.As(err, &ce); !strings.Contains(ce.Message, "data channel") {
		t.Errorf("the []byte error does not say what to do: %v", err)
	}
}

func TestJSONCodecKeepsIntegersAndStructs(t *testing.T) {
	v, err := JSONCodec{}.Decode([]byte(`{"big":18446744073709551615,"neg":-9223372036854775808,"f":2.0,"e":1e2}`))
	want := map[string]any{"big": uint64(math.MaxUint64), "neg": int64(math.MinInt64), "f": 2.0, "e": 100.0}
	if err != nil || !sameValue(v, want) {
		t.Fatalf("got %#v, %v", v, err)
	}
	var ce *CodecError
	if _, err := (JSONCodec{}).Decode([]byte(`[18446744073709551616]`)); !errors.As(err, &ce) {
		t.Fatalf("out-of-range integer: %v", err)
	}
	out, err := JSONCodec{}.Encode(sample{Name: "<&>", Count: 2, Ratio: 0.25})
	if err != nil || string(out) != `{"name":"<&>","count":2,"ratio":0.25}` {
		t.Fatalf("got %s, %v", out, err)
	}
	var back sample
	if err := (JSONCodec{}).Unmarshal(out, &back); err != nil || back.Name != "<&>" {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
}

func TestParamsDecodeOnBothCodecs(t *testing.T) {
	for _, codec := range []Codec{JSONCodec{}, MessagePackCodec{}} {
		payload, err := codec.Encode(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "m",
			"params": map[string]any{"name": "n", "count": 3, "ratio": 2, "extra": map[string]any{"k": 1}}})
		if err != nil {
			t.Fatal(err)
		}
		value, err := codec.Decode(payload)
		if err != nil {
			t.Fatal(err)
		}
		msg := JSONRPCProtocol{}.Classify(value)
		p := Params{value: msg.Params, present: msg.HasParams}
		var s sample
		if err := p.Decode(&s); err != nil || s.Name != "n" || s.Count != 3 || s.Ratio != 2 || s.Extra["k"] != 1 {
			t.Fatalf("%s: %+v, %v", codec.Name(), s, err)
		}
		var generic any
		if err := p.Decode(&generic); err != nil || !sameValue(generic, msg.Params) {
			t.Fatalf("%s: generic %v, %v", codec.Name(), generic, err)
		}
		var wrong []string
		var rpcErr *Error
		if err := p.Decode(&wrong); !errors.As(err, &rpcErr) || rpcErr.Code != CodeInvalidParams {
			t.Fatalf("%s: wrong target: %v", codec.Name(), err)
		}
	}
}

// checkWireResponse: the response the channel sends (encoded without building a map) has the
// bytes of JSONRPCProtocol.Response's map, and fails alike.
func checkWireResponse(t *testing.T, id ID, result any) {
	t.Helper()
	want, wantErr := MessagePackCodec{}.Encode(JSONRPCProtocol{}.Response(id, result))
	got, err := MessagePackCodec{}.Encode(wireResponse{id: id, result: result})
	if (err == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
		t.Fatalf("response %s %#v: %x, %v; the map gives %x, %v", id, result, got, err, want, wantErr)
	}
}

func TestWireResponseEncodesLikeTheResponseMap(t *testing.T) {
	t.Parallel()
	ids := []ID{IntID(0), IntID(-40), IntID(1 << 40), {kind: idUint, unum: 1<<64 - 1}, StringID(""), StringID("a-1"), {}}
	results := []any{nil, true, "s", map[string]any{"b": 1, "a": []any{1.5, "x"}}, bytes.Repeat([]byte{3}, outframe.RefMinSize+1),
		sample{Name: "n", Blob: []byte{1}}, []any{math.NaN()}, make(chan int)}
	for _, id := range ids {
		for _, result := range results {
			checkWireResponse(t, id, result)
		}
	}
}

// A nil *Params or *Result inside a value is null, as any nil pointer is (and as the JSON codec
// writes it), on both codecs, with or without an encode hook; a non-nil one is its value. (The
// MessagePack encoder called the value method through the nil pointer, and panicked.)
func TestNilParamsAndResultPointersEncodeAsNull(t *testing.T) {
	hook := func(v any) (any, error) { return v, nil }
	params, result := &Params{value: []any{int64(1)}, present: true}, &Result{value: "r"}
	for _, c := range []Codec{MessagePackCodec{}, MessagePackCodec{EncodeHook: hook}, JSONCodec{}, JSONCodec{EncodeHook: hook}} {
		for _, v := range []any{
			map[string]any{"p": (*Params)(nil), "r": (*Result)(nil), "q": params, "s": result},
			struct {
				P *Params `json:"p"`
				R *Result `json:"r"`
				Q *Params `json:"q"`
				S *Result `json:"s"`
			}{Q: params, S: result},
		} {
			out, err := c.Encode(v)
			if err != nil {
				t.Fatalf("%s: %v", c.Name(), err)
			}
			back, err := c.Decode(out)
			want := map[string]any{"p": nil, "r": nil, "q": []any{int64(1)}, "s": "r"}
			if err != nil || !reflect.DeepEqual(back, want) {
				t.Fatalf("%s: %T encoded as %v (%v), want %v", c.Name(), v, back, err, want)
			}
		}
		if out, err := c.Encode((*Params)(nil)); err != nil || (string(out) != "null" && !bytes.Equal(out, []byte{0xc0})) {
			t.Fatalf("%s: a nil *Params alone encoded as %q, %v", c.Name(), out, err)
		}
	}
}
