package msgpack

import (
	"bytes"
	"math"
	"math/rand"
	"reflect"
	"testing"
)

// checkWhole is Check with Decode's whole-payload rules (not empty, no trailing bytes).
func checkWhole(data []byte) error {
	if len(data) == 0 {
		return structuralf("empty payload")
	}
	n, err := Check(data)
	if err == nil && n != len(data) {
		return structuralf("%d trailing bytes after the object", len(data)-n)
	}
	return err
}

// sameError: both nil, or the same text and the same Structural flag (which decides whether the
// request's id is recovered).
func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	ea, okA := a.(*Error)
	eb, okB := b.(*Error)
	return okA && okB && ea.Msg == eb.Msg && ea.Structural == eb.Structural
}

func compareCheck(t *testing.T, data []byte) {
	t.Helper()
	_, decodeErr := Decode(data)
	if checkErr := checkWhole(data); !sameError(decodeErr, checkErr) {
		t.Fatalf("%x: Decode fails with %v, Check with %v", data, decodeErr, checkErr)
	}
}

// envelope wraps params in a request map, as the data channel receives them.
func envelope(params []byte) []byte {
	out := []byte{0x84, 0xa7, 'j', 's', 'o', 'n', 'r', 'p', 'c', 0xa3, '2', '.', '0', 0xa2, 'i', 'd', 0x07,
		0xa6, 'm', 'e', 't', 'h', 'o', 'd', 0xa1, 'm', 0xa6, 'p', 'a', 'r', 'a', 'm', 's'}
	return append(out, params...)
}

// compareLazy: DecodeLazy accepts and refuses what Decode does, with the same error; what it
// accepts reads back as Decode's value, and its FoldDups and Watched are right.
func compareLazy(t *testing.T, payload []byte) {
	t.Helper()
	want, wantErr := Decode(payload)
	got, err := DecodeLazy(payload, "params", "x")
	if !sameError(wantErr, err) {
		t.Fatalf("%x: Decode fails with %v, DecodeLazy with %v", payload, wantErr, err)
	}
	m, ok := got.(map[string]any)
	if err != nil || !ok {
		return
	}
	lazy, ok := m["params"].(*Lazy)
	if !ok {
		if _, present := m["params"]; present {
			t.Fatalf("%x: params is a %T", payload, m["params"])
		}
		return
	}
	m["params"] = lazy.Value()
	if !equalGeneric(want, got) {
		t.Fatalf("%x: DecodeLazy reads %#v, Decode %#v", payload, got, want)
	}
	if dups := refFoldDups(lazy.Raw); lazy.FoldDups != dups {
		t.Fatalf("%x: FoldDups %v, want %v", lazy.Raw, lazy.FoldDups, dups)
	}
	p, isMap := want.(map[string]any)["params"].(map[string]any)
	if _, watched := p["x"]; lazy.Watched != (isMap && watched) {
		t.Fatalf("%x: Watched %v, want %v", lazy.Raw, lazy.Watched, isMap && watched)
	}
}

// refFoldDups is what Lazy.FoldDups must say for valid data, worked out the slow way: whether a
// map holds a non-ASCII key or two keys equal but for case.
func refFoldDups(data []byte) bool {
	d := decoder{data: data}
	var walk func() bool
	walk = func() bool {
		if n, ok := d.header(true); ok {
			var keys [][]byte
			found := false
			for i := uint64(0); i < n; i++ {
				kn, _ := d.strHeader()
				key, _ := d.bytesN(kn, "str")
				for _, other := range keys {
					found = found || bytes.EqualFold(key, other)
				}
				for _, x := range key {
					found = found || x >= 0x80
				}
				keys = append(keys, key)
				found = walk() || found
			}
			return found
		}
		if n, ok := d.header(false); ok {
			found := false
			for i := uint64(0); i < n; i++ {
				found = walk() || found
			}
			return found
		}
		_ = d.skip()
		return false
	}
	return walk()
}

// equalGeneric compares generic values, floats by their bits (NaN equals NaN).
func equalGeneric(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalGeneric(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, found := y[k]
			if !found || !equalGeneric(v, w) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// TestCheckIsDecodeWithoutTheValue: on random objects of every format, and on damaged ones,
// Check and DecodeLazy refuse exactly what Decode refuses, with the same error.
func TestCheckIsDecodeWithoutTheValue(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		data := genObject(r, nil, 0)
		compareCheck(t, data)
		compareLazy(t, envelope(data))
		for j := 0; j < 3; j++ {
			bad := mutate(r, data)
			compareCheck(t, bad)
			compareLazy(t, envelope(bad))
			compareLazy(t, mutate(r, envelope(data)))
		}
	}
}

func TestCheckNestingLimit(t *testing.T) {
	for _, n := range []int{MaxNestingDepth - 2, MaxNestingDepth - 1, MaxNestingDepth, MaxNestingDepth + 1} {
		compareCheck(t, deep(n))
		compareLazy(t, envelope(deep(n)))
	}
	if _, err := DecodeLazy(envelope(deep(MaxNestingDepth)), "params", ""); err == nil {
		t.Fatal("params nested past the limit were accepted")
	}
}

func TestFoldDups(t *testing.T) {
	for _, c := range []struct {
		params []byte
		want   bool
	}{
		{[]byte{0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0x02}, false},
		{[]byte{0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02}, true},
		{[]byte{0x82, 0xa1, 'a', 0x01, 0xa1, 'A', 0x02}, true},
		{[]byte{0x91, 0x81, 0xa2, 0xc3, 0xa9, 0x01}, true}, // "é": not compared cheaply
		{[]byte{0x92, 0x81, 0xa1, 'a', 0x01, 0x81, 0xa1, 'a', 0x02}, false},
	} {
		v, err := DecodeLazy(envelope(c.params), "params", "")
		if err != nil {
			t.Fatal(err)
		}
		if got := v.(map[string]any)["params"].(*Lazy).FoldDups; got != c.want {
			t.Errorf("%x: FoldDups %v, want %v", c.params, got, c.want)
		}
	}
}

func FuzzCheckAgainstDecode(f *testing.F) {
	r := rand.New(rand.NewSource(2))
	for i := 0; i < 30; i++ {
		f.Add(genObject(r, nil, 0))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		compareCheck(t, data)
		compareLazy(t, envelope(data))
		compareLazy(t, data)
	})
}
