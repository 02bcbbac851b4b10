package msgpack

import (
	"math"
	"math/rand"
	"reflect"
	"testing"
	"time"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/assign"
	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/structs"
)

// The target types of the differential tests: every kind assign handles, with json tags
// (omitempty, "-", embedded structs by value and by pointer), named types, recursion.
type (
	item struct {
		ID    int64   `json:"id"`
		Value float64 `json:"value"`
	}
	Embedded struct {
		K    string `json:"k"`
		Name string // shadowed by rec.Name: the shallower field wins
	}
	EmbPtr   struct{ Ratio2 float64 }
	myBytes  []byte
	myString string
	rec      struct {
		ID    int32          `json:"id"`
		Value *float32       `json:"value,omitempty"`
		Name  string         `json:"name"`
		Tags  []string       `json:"tags"`
		N     uint8          `json:"n"`
		X     any            `json:"x"`
		Inner *rec           `json:"inner"`
		Blob  []byte         `json:"blob"`
		M     map[string]int `json:"m"`
		Skip  int            `json:"-"`
		Small [2]int16       `json:"small"`
		Ratio float32        `json:"ratio"`
		Items []item         `json:"items"`
		Mine  myBytes        `json:"mine"`
		S     myString       `json:"s"`
		U     uint64         `json:"u"`
		Embedded
		*EmbPtr
		hidden int // unexported: never filled (TestDecodeIntoLeavesUnexportedFields)
	}
	withTime struct {
		When time.Time `json:"when"` // decodes itself: left to assign
	}
)

// targets make a fresh target each, already holding values, so that what decoding keeps,
// replaces and merges is compared too.
var targets = map[string]func() any{
	"rec": func() any {
		v := float32(9)
		return &rec{Value: &v, M: map[string]int{"kept": 1}, Small: [2]int16{7, 7}, Inner: &rec{Name: "old"}, Skip: 3}
	},
	"items":     func() any { return &struct{ Items []item }{} },
	"map-int":   func() any { return &map[int]uint16{5: 5} },
	"map-ptr":   func() any { return &map[string]*item{} },
	"slice-any": func() any { return new([]any) },
	"any":       func() any { return new(any) },
	"array":     func() any { return &[3]item{{ID: 1}, {ID: 2}, {ID: 3}} },
	"bytes-ptr": func() any { return new(*[]byte) },
	"uints":     func() any { return new([]uint) },
	"scalars":   func() any { return new([]float32) },
	"bool":      func() any { return new(bool) },
	"string":    func() any { return new(string) },
	"time":      func() any { return new(withTime) },
}

var assignOpts = assign.Options{ShareBinary: true, EncodeJSON: func(v any) ([]byte, error) { return []byte("null"), nil }}

// genFor appends an object that mostly fits type t, now and then anything at all.
func genFor(r *rand.Rand, t reflect.Type, buf []byte, depth int) []byte {
	if r.Intn(12) == 0 || depth > 4 {
		return genObject(r, buf, depth+3)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return genFor(r, t.Elem(), buf, depth)
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && r.Intn(2) == 0 {
			return append(buf, 0xc4, 2, 1, 2)
		}
		n := r.Intn(4)
		buf = arrayHeader(r, buf, n)
		for i := 0; i < n; i++ {
			buf = genFor(r, t.Elem(), buf, depth+1)
		}
		return buf
	case reflect.Map:
		n := r.Intn(4)
		buf = mapHeader(r, buf, n)
		for i := 0; i < n; i++ {
			buf = genStr(r, buf, []string{"a", "1", "-2", "70000", "b", "300"}[r.Intn(6)])
			buf = genFor(r, t.Elem(), buf, depth+1)
		}
		return buf
	case reflect.Struct:
		fields := structs.Of(t).List
		n := r.Intn(len(fields) + 1)
		buf = mapHeader(r, buf, n)
		for _, i := range r.Perm(len(fields))[:n] {
			buf = genStr(r, buf, fields[i].Name)
			buf = genFor(r, t.FieldByIndex(fields[i].Index).Type, buf, depth+1)
		}
		return buf
	}
	return genScalar(r, buf)
}

// compareInto decodes data (a valid object) into a fresh target of each type as Params.Decode
// does (DecodeInto, else assign the generic value) and by assigning the generic value only: the
// same value, or both an error with the same text.
func compareInto(t *testing.T, data []byte, name string, make func() any) {
	t.Helper()
	generic, err := Decode(data)
	if err != nil {
		return
	}
	if lazy, _ := DecodeLazy(envelope(data), "params", ""); lazy.(map[string]any)["params"].(*Lazy).FoldDups {
		return // Params.Decode never calls DecodeInto for those
	}
	direct, want := make(), make()
	_, supported := planFor(reflect.TypeOf(direct).Elem())
	var directErr error
	if !DecodeInto(data, 1, direct) {
		if directErr = assign.Into(direct, generic, assignOpts); directErr == nil && supported {
			t.Fatalf("%s %x: DecodeInto refused what assign accepts", name, data)
		}
	}
	wantErr := assign.Into(want, generic, assignOpts)
	// Keys that differ but name the same map entry ("1" and "01" of a map[int]T) or field (but
	// for case): assign keeps the one it walks to last, in Go's random map order (far from
	// uniform for small maps: see below).
	for i := 0; i < 5000 && directErr == nil && wantErr == nil && !deepEqual(reflect.ValueOf(direct), reflect.ValueOf(want)); i++ {
		want = make()
		wantErr = assign.Into(want, generic, assignOpts)
	}
	switch {
	case (directErr == nil) != (wantErr == nil):
		t.Fatalf("%s %x: direct error %v, assign error %v", name, data, directErr, wantErr)
	case wantErr == nil && !deepEqual(reflect.ValueOf(direct), reflect.ValueOf(want)):
		t.Fatalf("%s %x:\ndirect %#v\nassign %#v", name, data, direct, want)
	case wantErr != nil && directErr.Error() != wantErr.Error():
		// assign walks maps in Go's random order: with two bad keys, either may be named. That
		// order is far from uniform for small maps (measured: one of three bad keys named once
		// in 105 walks), so sample enough walks that a text assign can give is always met.
		for i := 0; i < 5000; i++ {
			if err := assign.Into(make(), generic, assignOpts); err.Error() == directErr.Error() {
				return
			}
		}
		t.Fatalf("%s %x: direct error %q, assign error %q", name, data, directErr, wantErr)
	}
}

// deepEqual is reflect.DeepEqual with floats compared by bits (NaN equals NaN).
func deepEqual(a, b reflect.Value) bool {
	if a.IsValid() != b.IsValid() || a.IsValid() && a.Type() != b.Type() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		return math.Float64bits(a.Float()) == math.Float64bits(b.Float())
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return deepEqual(a.Elem(), b.Elem())
	case reflect.Slice, reflect.Array:
		if a.Kind() == reflect.Slice && a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !deepEqual(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			if w := b.MapIndex(k); !w.IsValid() || !deepEqual(a.MapIndex(k), w) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if !deepEqual(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	if !a.CanInterface() {
		return true // unexported: never filled by either
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// TestDecodeIntoIsAssign is the differential property test: random objects, shaped after each
// target type or not, decoded by both ways.
func TestDecodeIntoIsAssign(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for i := 0; i < 4000; i++ {
		for name, make := range targets {
			data := genFor(r, reflect.TypeOf(make()).Elem(), nil, 0)
			compareInto(t, data, name, make)
			compareInto(t, genObject(r, nil, 0), name, make)
		}
	}
}

func TestDecodeIntoLeavesSelfDecodingTypesToAssign(t *testing.T) {
	if _, ok := planFor(reflect.TypeOf(withTime{})); ok {
		t.Fatal("a struct holding a time.Time must be left to assign")
	}
	if _, ok := planFor(reflect.TypeOf(rec{})); !ok {
		t.Fatal("rec should be decoded directly")
	}
	var p *rec
	if DecodeInto([]byte{0x80}, 1, p) || DecodeInto([]byte{0x80}, 1, rec{}) {
		t.Fatal("DecodeInto needs a non-nil pointer")
	}
}

// An unexported field is never filled, not even by a member of its name: it keeps its value.
func TestDecodeIntoLeavesUnexportedFields(t *testing.T) {
	data := []byte{0x82, 0xa6, 'h', 'i', 'd', 'd', 'e', 'n', 0x05, 0xa2, 'i', 'd', 0x07}
	v := rec{hidden: 3}
	if !DecodeInto(data, 1, &v) || v.hidden != 3 || v.ID != 7 {
		t.Fatalf("hidden %d, id %d: want the unexported field untouched and the id filled", v.hidden, v.ID)
	}
}

func TestDecodeIntoSharesBinary(t *testing.T) {
	data := []byte{0x81, 0xa4, 'b', 'l', 'o', 'b', 0xc4, 2, 1, 2}
	var v rec
	if !DecodeInto(data, 1, &v) || string(v.Blob) != "\x01\x02" || &v.Blob[0] != &data[len(data)-2] {
		t.Fatalf("blob %v: want the received bytes themselves", v.Blob)
	}
}

func FuzzDecodeIntoAgainstAssign(f *testing.F) {
	r := rand.New(rand.NewSource(4))
	for i := 0; i < 30; i++ {
		f.Add(genFor(r, reflect.TypeOf(rec{}), nil, 0))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for name, make := range targets {
			compareInto(t, data, name, make)
		}
	})
}
