package msgpack

import (
	"bytes"
	"math"
	"math/big"
	"testing"

	vm "github.com/vmihailenco/msgpack/v5"
)

// FuzzDecodeAgainstVmihailenco is a differential test of the decoder: what it accepts, the
// reference implementation (vmihailenco/msgpack) reads as the same value, filling the payload
// exactly. What it refuses is not compared: the mapping's refusals (ext types, non-string keys,
// invalid UTF-8, deep nesting) are its own, and the reference allocates whatever a forged header
// declares before finding the bytes missing.
func FuzzDecodeAgainstVmihailenco(f *testing.F) {
	for _, seed := range [][]byte{
		{0x80}, {0x90}, {0xc0}, {0xc3}, {0x7f}, {0xe0}, {0xcc, 0xff}, {0xcf, 0xff, 0, 0, 0, 0, 0, 0, 1},
		{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}, {0xca, 0x3f, 0xc0, 0, 0}, {0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1},
		{0xa3, 'a', 'b', 'c'}, {0xc4, 2, 1, 2}, {0x92, 0x01, 0xa1, 'x'}, {0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02},
		{0xdc, 0, 1, 0xc0}, {0xde, 0, 1, 0xa1, 'k', 0x90}, {0x91}, {0xd9, 5, 'a'}, {0xc1}, {0x01, 0x02},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		ours, err := Decode(input)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("%x: failed with %T, want *Error: %v", input, err, err)
			}
			return
		}
		r := bytes.NewReader(input)
		theirs, theirErr := vm.NewDecoder(r).DecodeInterfaceLoose()
		if theirErr != nil || r.Len() != 0 {
			t.Fatalf("%x: decoded %#v, the reference fails (%v) or leaves %d bytes", input, ours, theirErr, r.Len())
		}
		if !same(ours, theirs) {
			t.Fatalf("%x: decoded %#v, the reference %#v", input, ours, theirs)
		}
	})
}

// same compares a decoded value with the reference's: integers by value whatever their Go type,
// floats by bits, maps and arrays element by element.
func same(ours, theirs any) bool {
	if a, ok := integer(ours); ok {
		b, ok := integer(theirs)
		return ok && a.Cmp(b) == 0
	}
	switch x := ours.(type) {
	case nil:
		return theirs == nil
	case bool, string:
		return x == theirs
	case float64: // the reference keeps float 32 as float32 inside containers
		if y, ok := theirs.(float32); ok {
			theirs = float64(y)
		}
		y, ok := theirs.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	case []byte: // the reference reads bin as a string in loose mode
		switch y := theirs.(type) {
		case []byte:
			return bytes.Equal(x, y)
		case string:
			return string(x) == y
		}
		return false
	case []any:
		y, ok := theirs.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !same(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := stringMap(theirs)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, found := y[k]; !found || !same(v, w) {
				return false
			}
		}
		return true
	}
	return false
}

func integer(v any) (*big.Int, bool) {
	switch x := v.(type) {
	case int64:
		return big.NewInt(x), true
	case uint64:
		return new(big.Int).SetUint64(x), true
	case int8, int16, int32, int, uint8, uint16, uint32, uint:
		return integer(normalizeSmall(x))
	}
	return nil, false
}

func normalizeSmall(v any) any {
	switch x := v.(type) {
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int:
		return int64(x)
	case uint8:
		return uint64(x)
	case uint16:
		return uint64(x)
	case uint32:
		return uint64(x)
	case uint:
		return uint64(x)
	}
	return v
}

func stringMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, v := range m {
			s, ok := k.(string)
			if !ok {
				return nil, false
			}
			out[s] = v
		}
		return out, true
	}
	return nil, false
}
