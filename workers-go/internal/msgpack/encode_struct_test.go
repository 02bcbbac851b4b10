package msgpack

import (
	"bytes"
	"encoding/json"
	"math/big"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Promoted string `json:"promoted"`
	Hidden   int    `json:"-"`
}

type outer struct {
	inner
	*Extra
	Name    string            `json:"name"`
	Count   int32             `json:"count,omitempty"`
	Empty   []int             `json:"empty,omitempty"`
	Ptr     *float64          `json:"ptr"`
	Any     any               `json:"any"`
	Items   []inner           `json:"items"`
	Map     map[string]uint16 `json:"map"`
	private int
	Untag   bool
}

type Extra struct {
	Bonus string `json:"bonus"`
}

// Structs are written in one pass with encoding/json's field rules (names, "-", omitempty,
// promotion through embedded structs and pointers, a nil embedded pointer's fields left out):
// what they write reads back as what encoding/json writes.
func TestStructsEncodeLikeEncodingJSON(t *testing.T) {
	f := 2.5
	for _, v := range []any{
		outer{Name: "a", Count: 3, Ptr: &f, Any: []any{int64(1), "x"}, Items: []inner{{Promoted: "p"}},
			Map: map[string]uint16{"b": 2, "a": 1}, inner: inner{Promoted: "top", Hidden: 9}, private: 1, Untag: true},
		outer{Extra: &Extra{Bonus: "b"}},
		&outer{},
		struct{ A, B int }{1, 2},
		[]outer{{}, {Name: "n"}},
	} {
		encoded := encodeOrFail(t, v)
		got, err := Decode(encoded)
		if err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
		text, _ := json.Marshal(v)
		want := fromJSON(t, text)
		if !same(got, want) {
			t.Fatalf("%#v:\nwrote %#v\nencoding/json writes %s", v, got, text)
		}
	}
}

func encodeOrFail(t *testing.T, v any) []byte {
	t.Helper()
	e := Encoder{}
	if err := e.Encode(v, 0); err != nil {
		t.Fatalf("%#v: %v", v, err)
	}
	return e.Buf
}

// fromJSON reads JSON text as the generic value, integers as int64.
func fromJSON(t *testing.T, text []byte) any {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case json.Number:
			if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
				return i
			}
			f, _ := strconv.ParseFloat(string(x), 64)
			return f
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		case map[string]any:
			for k := range x {
				x[k] = walk(x[k])
			}
		}
		return v
	}
	return walk(v)
}

// Struct fields follow the rules of top-level values: a time.Time is refused (the timestamp is an
// ext type), a big.Int is an integer, a TextMarshaler its text; keys come out sorted.
func TestStructFieldsFollowTheMapping(t *testing.T) {
	e := Encoder{}
	err := e.Encode(struct{ At time.Time }{time.Now()}, 0)
	if err == nil || !strings.Contains(err.Error(), "time.Time") {
		t.Fatalf("time.Time field: %v", err)
	}
	got, err := Decode(encodeOrFail(t, struct {
		Z  *big.Int
		IP netip.Addr
	}{big.NewInt(5), netip.MustParseAddr("10.0.0.1")}))
	if err != nil || !same(got, map[string]any{"Z": int64(5), "IP": "10.0.0.1"}) {
		t.Fatalf("got %#v, %v", got, err)
	}
	if out := encodeOrFail(t, struct{ B, A int }{1, 2}); !bytes.Equal(out, []byte{0x82, 0xa1, 'A', 2, 0xa1, 'B', 1}) {
		t.Fatalf("keys not sorted: %x", out)
	}
}
