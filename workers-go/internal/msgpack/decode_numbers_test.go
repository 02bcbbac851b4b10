package msgpack

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"testing"
)

// TestNumbersKeepTheirTypesAndValues: every integer and float format decodes to the type of the
// mapping (int64, uint64 above math.MaxInt64, float64) and to the exact value, comparing equal to
// the same number boxed by Go.
func TestNumbersKeepTheirTypesAndValues(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   []byte
		want any
	}{
		{[]byte{0x00}, int64(0)}, {[]byte{0x7f}, int64(127)}, {[]byte{0xe0}, int64(-32)}, {[]byte{0xff}, int64(-1)},
		{[]byte{0xcc, 0xff}, int64(255)}, {[]byte{0xcd, 0x01, 0x00}, int64(256)}, {[]byte{0xcd, 0xff, 0xff}, int64(65535)},
		{[]byte{0xce, 0xff, 0xff, 0xff, 0xff}, int64(math.MaxUint32)},
		{[]byte{0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, int64(math.MaxInt64)},
		{[]byte{0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0}, uint64(1 << 63)},
		{[]byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint64(math.MaxUint64)},
		{[]byte{0xd0, 0x80}, int64(math.MinInt8)}, {[]byte{0xd0, 0x7f}, int64(127)}, {[]byte{0xd0, 0x00}, int64(0)},
		{[]byte{0xd1, 0x80, 0x00}, int64(math.MinInt16)}, {[]byte{0xd1, 0x7f, 0xff}, int64(math.MaxInt16)},
		{[]byte{0xd2, 0x80, 0, 0, 0}, int64(math.MinInt32)}, {[]byte{0xd2, 0xff, 0xff, 0xff, 0xfe}, int64(-2)},
		{[]byte{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}, int64(math.MinInt64)},
		{[]byte{0xd3, 0x00, 0, 0, 0, 0, 0, 0x01, 0x00}, int64(256)},
		{[]byte{0xca, 0x3f, 0xc0, 0, 0}, float64(1.5)}, {[]byte{0xca, 0xff, 0x80, 0, 0}, math.Inf(-1)},
		{[]byte{0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, float64(0)}, {[]byte{0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}, float64(1.5)},
		{[]byte{0xcb, 0x7f, 0xef, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, math.MaxFloat64},
		{[]byte{0xcb, 0, 0, 0, 0, 0, 0, 0, 1}, math.SmallestNonzeroFloat64},
	} {
		got, err := Decode(c.in)
		if err != nil {
			t.Fatalf("%x: %v", c.in, err)
		}
		if got != c.want || reflect.TypeOf(got) != reflect.TypeOf(c.want) || fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%x: got %T %v, want %T %v", c.in, got, got, c.want, c.want)
		}
	}
}

// TestFloatBitsArePreserved: negative zero and NaN payloads keep their exact bits.
func TestFloatBitsArePreserved(t *testing.T) {
	t.Parallel()
	for _, bits := range []uint64{1 << 63, 0x7ff8000000000001, 0xfff0000000000000, 0x7ff0000000000000} {
		in := []byte{0xcb, byte(bits >> 56), byte(bits >> 48), byte(bits >> 40), byte(bits >> 32), byte(bits >> 24), byte(bits >> 16), byte(bits >> 8), byte(bits)}
		got, err := Decode(in)
		if err != nil {
			t.Fatal(err)
		}
		if f, ok := got.(float64); !ok || math.Float64bits(f) != bits {
			t.Errorf("%x: got %T %v, want float64 of bits %016x", in, got, got, bits)
		}
	}
}

// TestNumbersAreIndependentValues: the numbers of one payload, and of payloads decoded later, are
// each their own value; they survive a garbage collection and read back through reflect and
// encoding/json as numbers boxed by Go do.
func TestNumbersAreIndependentValues(t *testing.T) {
	t.Parallel()
	build := func(offset int) []any {
		items := make([]any, 0, 400)
		for i := 0; i < 200; i++ {
			items = append(items, int64(offset+1000*i-70000), float64(offset)+float64(i)*0.25-10)
		}
		return items
	}
	first, err := Decode(encodeForTest(t, build(0)))
	if err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 3; round++ {
		if _, err := Decode(encodeForTest(t, build(round))); err != nil {
			t.Fatal(err)
		}
		runtime.GC()
	}
	if !reflect.DeepEqual(first, build(0)) {
		t.Fatal("the numbers of a payload changed after others were decoded")
	}
	items := first.([]any)
	if n := reflect.ValueOf(items[2]).Int(); n != 1000-70000 {
		t.Errorf("reflect reads %d", n)
	}
	got, err := json.Marshal(items[:4])
	if err != nil || string(got) != "[-70000,-10,-69000,-9.75]" {
		t.Errorf("encoding/json writes %s (%v)", got, err)
	}
}
