package msgpack

import (
	"encoding/binary"
	"math"
	"math/rand"
)

// genObject appends a random MessagePack object to buf, in every format the decoder reads (and
// some it refuses: ext types, non-string keys, invalid UTF-8, reserved bytes, deep nesting), so
// that the decoder, the checker and the direct decoder can be compared on it. Maps often hold the
// keys of the test types, in any case, sometimes twice.
func genObject(r *rand.Rand, buf []byte, depth int) []byte {
	if depth > 4 {
		return genScalar(r, buf)
	}
	switch r.Intn(10) {
	case 0, 1:
		n := r.Intn(5)
		if r.Intn(20) == 0 {
			n = 17 + r.Intn(4) // past smallMap: the sorted duplicate check
		}
		buf = arrayHeader(r, buf, n)
		for i := 0; i < n; i++ {
			buf = genObject(r, buf, depth+1)
		}
		return buf
	case 2, 3, 4:
		n := r.Intn(5)
		if r.Intn(20) == 0 {
			n = 9 + r.Intn(12)
		}
		buf = mapHeader(r, buf, n)
		for i := 0; i < n; i++ {
			if r.Intn(40) == 0 {
				buf = genScalar(r, buf) // most likely not a string: refused
			} else {
				buf = genStr(r, buf, genKey(r, i))
			}
			buf = genObject(r, buf, depth+1)
		}
		return buf
	}
	return genScalar(r, buf)
}

var testKeys = []string{"id", "value", "items", "name", "tags", "n", "x", "inner", "blob", "m", "Value", "ID", "VALUE", "Name", "ratio", "small", "k\u212a", "é"}

func genKey(r *rand.Rand, i int) string {
	if r.Intn(8) == 0 {
		return string(rune('a'+i%26)) + string(rune('a'+r.Intn(26)))
	}
	return testKeys[r.Intn(len(testKeys))]
}

func genScalar(r *rand.Rand, buf []byte) []byte {
	switch r.Intn(16) {
	case 0:
		return append(buf, 0xc0)
	case 1:
		return append(buf, 0xc2+byte(r.Intn(2)))
	case 2:
		return append(buf, byte(r.Intn(0x80)))
	case 3:
		return append(buf, 0xe0+byte(r.Intn(32)))
	case 4: // uint 8/16/32/64, in any width, values around the limits
		size := 1 << r.Intn(4)
		buf = append(buf, 0xcc+byte(bitsOf(size)))
		return appendN(buf, size, interesting(r))
	case 5:
		size := 1 << r.Intn(4)
		buf = append(buf, 0xd0+byte(bitsOf(size)))
		return appendN(buf, size, interesting(r))
	case 6:
		return binary.BigEndian.AppendUint32(append(buf, 0xca), math.Float32bits(float32(r.NormFloat64()*1e3)))
	case 7, 8:
		f := []float64{r.NormFloat64(), 1e300, -1e39, 3.5, 0, math.Inf(1), math.NaN(), float64(r.Intn(100))}[r.Intn(8)]
		return binary.BigEndian.AppendUint64(append(buf, 0xcb), math.Float64bits(f))
	case 9, 10:
		return genStr(r, buf, []string{"abc", "", "héllo", "\xff\xfe", "x", "12", "-3", "99999999999999999999"}[r.Intn(8)])
	case 11:
		n := r.Intn(4)
		buf = append(buf, 0xc4, byte(n))
		for i := 0; i < n; i++ {
			buf = append(buf, byte(r.Intn(256)))
		}
		return buf
	case 12: // ext types: fixext 1, ext 8
		if r.Intn(2) == 0 {
			return append(buf, 0xd4, byte(r.Intn(256)), 0)
		}
		return append(buf, 0xc7, 1, 0xff, 0)
	case 13:
		return append(buf, 0xc1) // never used
	}
	return append(buf, byte(r.Intn(0x80)))
}

// interesting returns an integer near a limit of some integer type, or a small one.
func interesting(r *rand.Rand) uint64 {
	limits := []uint64{0, 1, 127, 128, 255, 256, 32767, 65535, 1<<31 - 1, 1 << 31, 1<<32 - 1, math.MaxInt64, 1 << 63, math.MaxUint64}
	x := limits[r.Intn(len(limits))]
	return x + uint64(r.Intn(3)) - 1
}

func bitsOf(size int) int {
	return map[int]int{1: 0, 2: 1, 4: 2, 8: 3}[size]
}

func appendN(buf []byte, size int, x uint64) []byte {
	for i := size - 1; i >= 0; i-- {
		buf = append(buf, byte(x>>(8*i)))
	}
	return buf
}

func genStr(r *rand.Rand, buf []byte, s string) []byte {
	if len(s) < 32 && r.Intn(4) != 0 {
		buf = append(buf, 0xa0|byte(len(s)))
	} else {
		buf = append(buf, 0xd9, byte(len(s)))
	}
	return append(buf, s...)
}

func arrayHeader(r *rand.Rand, buf []byte, n int) []byte {
	if n < 16 && r.Intn(4) != 0 {
		return append(buf, 0x90|byte(n))
	}
	return binary.BigEndian.AppendUint16(append(buf, 0xdc), uint16(n))
}

func mapHeader(r *rand.Rand, buf []byte, n int) []byte {
	if n < 16 && r.Intn(4) != 0 {
		return append(buf, 0x80|byte(n))
	}
	return binary.BigEndian.AppendUint16(append(buf, 0xde), uint16(n))
}

// mutate damages data at random: a byte changed, bytes cut, inserted or appended.
func mutate(r *rand.Rand, data []byte) []byte {
	out := append([]byte(nil), data...)
	for k := r.Intn(3) + 1; k > 0 && len(out) > 0; k-- {
		i := r.Intn(len(out))
		switch r.Intn(4) {
		case 0:
			out[i] = byte(r.Intn(256))
		case 1:
			out = out[:i]
		case 2:
			out = append(out[:i], append([]byte{byte(r.Intn(256))}, out[i:]...)...)
		default:
			out = append(out, byte(r.Intn(256)))
		}
	}
	return out
}

// deep returns n nested arrays around a nil.
func deep(n int) []byte {
	out := make([]byte, n, n+1)
	for i := range out {
		out[i] = 0x91
	}
	return append(out, 0xc0)
}
