package msgpack

import (
	"bytes"
	"cmp"
	"slices"
	"unicode/utf8"
)

// check reads past one object, accepting exactly what value accepts and failing with exactly the
// error value fails with (same text, same Structural flag, found at the same place), but building
// nothing: it mirrors value branch for branch. depth is the number of containers around the object.
// It also notes in d.lazy.foldDups whether a map may hold two keys equal but for ASCII case (see Lazy).
func (d *decoder) check(depth int) error {
	c, err := d.byte1()
	if err != nil {
		return err
	}
	switch {
	case c <= 0x7f || c >= 0xe0:
		return nil
	case c >= 0xa0 && c <= 0xbf:
		return d.checkStr(uint64(c & 0x1f))
	case c >= 0x90 && c <= 0x9f:
		return d.checkArray(uint64(c&0x0f), depth)
	case c >= 0x80 && c <= 0x8f:
		return d.checkMap(uint64(c&0x0f), depth)
	}
	switch c {
	case 0xc0, 0xc2, 0xc3:
		return nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		_, err := d.uintN(1 << (c - 0xcc))
		return err
	case 0xd0, 0xd1, 0xd2, 0xd3:
		_, err := d.uintN(1 << (c - 0xd0))
		return err
	case 0xca:
		_, err := d.uintN(4)
		return err
	case 0xcb:
		_, err := d.uintN(8)
		return err
	case 0xd9, 0xda, 0xdb:
		n, err := d.uintN(1 << (c - 0xd9))
		if err != nil {
			return err
		}
		return d.checkStr(n)
	case 0xc4, 0xc5, 0xc6:
		n, err := d.uintN(1 << (c - 0xc4))
		if err != nil {
			return err
		}
		_, err = d.bytesN(n, "bin")
		return err
	case 0xdc, 0xdd:
		n, err := d.uintN(2 << (c - 0xdc))
		if err != nil {
			return err
		}
		return d.checkArray(n, depth)
	case 0xde, 0xdf:
		n, err := d.uintN(2 << (c - 0xde))
		if err != nil {
			return err
		}
		return d.checkMap(n, depth)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xc7, 0xc8, 0xc9:
		return d.ext(c)
	}
	return structuralf("byte 0x%02x is never used in MessagePack", c)
}

// checkStr is str without the string: the same length check, then the same UTF-8 check.
func (d *decoder) checkStr(n uint64) error {
	b, err := d.bytesN(n, "str")
	if err != nil {
		return err
	}
	if !utf8.Valid(b) {
		return mappingf("str is not valid UTF-8")
	}
	return nil
}

func (d *decoder) checkArray(n uint64, depth int) error {
	if depth >= MaxNestingDepth {
		return mappingf("nesting deeper than %d levels", MaxNestingDepth)
	}
	if err := d.need(n, "array"); err != nil {
		return err
	}
	for i := uint64(0); i < n; i++ {
		if err := d.check(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// smallMap: the keys of a map up to this size are compared pairwise, in an array on the stack;
// a bigger map's keys are sorted by hash, in the checker's scratch stack (the maps nested in its
// values use the stack above them and are done with it before the next key), so that checking
// allocates at most as the stack grows, a few times per payload.
const smallMap = 8

// keyRef is a key of the map being checked: its case-folded hash and where its bytes are.
type keyRef struct {
	hash     uint32
	off, end int
}

func (d *decoder) checkMap(n uint64, depth int) error {
	if depth >= MaxNestingDepth {
		return mappingf("nesting deeper than %d levels", MaxNestingDepth)
	}
	if err := d.need(2*n, "map"); err != nil {
		return err
	}
	var small [smallMap]keyRef
	base := len(d.lazy.scratch) // popped at the end (after an error, the stack is dropped)
	if n > smallMap && !d.lazy.foldDups {
		d.lazy.scratch = slices.Grow(d.lazy.scratch, int(n)) // n is bounded by the bytes present
	}
	for i := uint64(0); i < n; i++ {
		ref, err := d.checkKey()
		if err != nil {
			return err
		}
		switch {
		case d.lazy.foldDups:
		case ref.hash == nonASCIIKey:
			d.lazy.foldDups = true // cannot be compared cheaply: say it may repeat
		case n <= smallMap:
			d.lazy.foldDups = d.repeats(small[:i], ref)
			small[i] = ref
		default:
			d.lazy.scratch = append(d.lazy.scratch, ref)
		}
		if depth == d.lazy.watchDepth && d.lazy.watchKey != "" && string(d.data[ref.off:ref.end]) == d.lazy.watchKey {
			d.lazy.watched = true
		}
		if d.hook != nil && !d.lazy.hooked && d.isHookKey(d.data[ref.off:ref.end]) {
			d.lazy.hooked = true
		}
		if err := d.check(depth + 1); err != nil {
			return err
		}
	}
	if big := d.lazy.scratch[base:]; !d.lazy.foldDups && len(big) > 1 {
		slices.SortFunc(big, func(a, b keyRef) int { return cmp.Compare(a.hash, b.hash) })
		for i := 1; i < len(big) && !d.lazy.foldDups; i++ {
			d.lazy.foldDups = big[i].hash == big[i-1].hash && d.foldEqual(big[i], big[i-1])
		}
	}
	d.lazy.scratch = d.lazy.scratch[:base]
	return nil
}

// repeats reports whether ref's key equals one of refs but for ASCII case.
func (d *decoder) repeats(refs []keyRef, ref keyRef) bool {
	for _, r := range refs {
		if r.hash == ref.hash && d.foldEqual(r, ref) {
			return true
		}
	}
	return false
}

func (d *decoder) foldEqual(a, b keyRef) bool {
	return bytes.EqualFold(d.data[a.off:a.end], d.data[b.off:b.end])
}

// nonASCIIKey is checkKey's hash for a key with a byte above 0x7f, whose case folding (the
// Kelvin sign folds to k) is beyond the cheap comparison.
const nonASCIIKey = 0

// checkKey is key without the string: the same type, length and UTF-8 checks. It returns the
// key's place and its FNV-1a hash with ASCII letters folded to lower case (never nonASCIIKey for
// an ASCII key).
func (d *decoder) checkKey() (keyRef, error) {
	n, err := d.keyLength()
	if err != nil {
		return keyRef{}, err
	}
	off := d.pos
	b, err := d.bytesN(n, "str")
	if err != nil {
		return keyRef{}, err
	}
	h := uint32(2166136261)
	for _, x := range b {
		if x >= 0x80 {
			if !utf8.Valid(b) {
				return keyRef{}, mappingf("str is not valid UTF-8")
			}
			return keyRef{hash: nonASCIIKey, off: off, end: d.pos}, nil
		}
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		h = (h ^ uint32(x)) * 16777619
	}
	return keyRef{hash: h | 1, off: off, end: d.pos}, nil // | 1: never nonASCIIKey
}
