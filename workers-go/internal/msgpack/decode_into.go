package msgpack

import (
	"bytes"
	"math"
	"reflect"
	"strconv"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/structs"
)

// DecodeInto decodes data, one object that Check or DecodeLazy accepted, straight into target (a
// non-nil pointer), with internal/assign's rules (those of Params.Decode, binaries shared rather
// than copied), without building the generic value: a struct's fields are found from the keys'
// bytes and filled in place. depth is the number of containers around the object.
//
// It reports false when it cannot give the result assigning the generic value would give: a
// target type it leaves to assign (one that decodes itself, a map with keys of another kind...),
// or bytes that do not fit the type. The caller then assigns the generic value, which gives the
// result and the error text of today; target may have been partly filled by then, but only when
// the bytes do not fit it, where assigning fails too. The caller must not use DecodeInto for data
// whose maps may repeat a key but for case (Lazy.FoldDups): a field would be filled twice.
func DecodeInto(data []byte, depth int, target any) bool {
	v := reflect.ValueOf(target)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return false
	}
	p, ok := planFor(v.Type().Elem())
	if !ok {
		return false
	}
	d := decoder{data: data}
	return d.into(v.Elem(), p, depth) && d.pos == len(d.data)
}

// into fills dst from the object at d.pos, as assign fills it from the object's generic value.
func (d *decoder) into(dst reflect.Value, p *plan, depth int) bool {
	if d.pos >= len(d.data) {
		return false
	}
	c := d.data[d.pos]
	if c == 0xc0 { // null leaves a value that cannot be null untouched
		d.pos++
		switch p.kind {
		case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
			dst.SetZero()
		}
		return true
	}
	switch p.kind {
	case reflect.Pointer:
		if dst.IsNil() {
			dst.Set(reflect.New(p.typ.Elem()))
		}
		return d.into(dst.Elem(), p.elem, depth)
	case reflect.Interface:
		v, err := d.value(depth)
		if err != nil {
			return false
		}
		dst.Set(reflect.ValueOf(v))
	case reflect.Bool:
		if c != 0xc2 && c != 0xc3 {
			return false
		}
		d.pos++
		dst.SetBool(c == 0xc3)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		k, i, _, _ := d.number()
		if k != numInt || dst.OverflowInt(i) {
			return false
		}
		dst.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		k, i, u, _ := d.number()
		if k == numInt && i >= 0 {
			k, u = numUint, uint64(i)
		}
		if k != numUint || dst.OverflowUint(u) {
			return false
		}
		dst.SetUint(u)
	case reflect.Float32, reflect.Float64:
		return d.intoFloat(dst)
	case reflect.String:
		n, ok := d.strHeader()
		if !ok {
			return false
		}
		s, err := d.str(n)
		if err != nil {
			return false
		}
		dst.SetString(s)
	case reflect.Slice:
		return d.intoSlice(dst, p, depth)
	case reflect.Array:
		return d.intoArray(dst, p, depth)
	case reflect.Map:
		return d.intoMap(dst, p, depth)
	case reflect.Struct:
		return d.intoStruct(dst, p, depth)
	default:
		return false
	}
	return true
}

// The kinds of number, as the generic value has them: int64, uint64 (above math.MaxInt64), float64.
const (
	numNone = iota // not a number: nothing was read
	numInt
	numUint
	numFloat
)

// number reads the number at d.pos, as value would decode it.
func (d *decoder) number() (kind int, i int64, u uint64, f float64) {
	c := d.data[d.pos]
	switch {
	case c <= 0x7f:
		d.pos++
		return numInt, int64(c), 0, 0
	case c >= 0xe0:
		d.pos++
		return numInt, int64(int8(c)), 0, 0
	case c >= 0xcc && c <= 0xcf:
		d.pos++
		x, err := d.uintN(1 << (c - 0xcc))
		if err != nil {
			return numNone, 0, 0, 0
		}
		if x > math.MaxInt64 {
			return numUint, 0, x, 0
		}
		return numInt, int64(x), 0, 0
	case c >= 0xd0 && c <= 0xd3:
		d.pos++
		v, err := d.signedInt(c)
		if err != nil {
			return numNone, 0, 0, 0
		}
		return numInt, v, 0, 0
	case c == 0xca || c == 0xcb:
		d.pos++
		v, err := d.float64(c)
		if err != nil {
			return numNone, 0, 0, 0
		}
		return numFloat, 0, 0, v
	}
	return numNone, 0, 0, 0
}

// intoFloat: an integer is accepted where a float is expected; float32 refuses what overflows it.
func (d *decoder) intoFloat(dst reflect.Value) bool {
	k, i, u, f := d.number()
	switch k {
	case numInt:
		f = float64(i)
	case numUint:
		f = float64(u)
	case numNone:
		return false
	}
	if dst.Kind() == reflect.Float32 && !math.IsInf(f, 0) && math.IsInf(float64(float32(f)), 0) {
		return false
	}
	dst.SetFloat(f)
	return true
}

// strHeader reads the header of a str, reporting false (having read nothing) for another type.
func (d *decoder) strHeader() (uint64, bool) {
	c := d.data[d.pos]
	switch {
	case c >= 0xa0 && c <= 0xbf:
		d.pos++
		return uint64(c & 0x1f), true
	case c >= 0xd9 && c <= 0xdb:
		d.pos++
		n, err := d.uintN(1 << (c - 0xd9))
		return n, err == nil
	}
	return 0, false
}

// header reads the header of an array (map false) or a map (map true), reporting false (having
// read nothing) for another type.
func (d *decoder) header(isMap bool) (uint64, bool) {
	c := d.data[d.pos]
	fix, wide := byte(0x90), byte(0xdc)
	if isMap {
		fix, wide = 0x80, 0xde
	}
	switch {
	case c >= fix && c <= fix+0x0f:
		d.pos++
		return uint64(c & 0x0f), true
	case c == wide || c == wide+1:
		d.pos++
		n, err := d.uintN(2 << (c - wide))
		return n, err == nil
	}
	return 0, false
}

func (d *decoder) intoSlice(dst reflect.Value, p *plan, depth int) bool {
	if c := d.data[d.pos]; c >= 0xc4 && c <= 0xc6 {
		if !p.bytesElem {
			return false
		}
		d.pos++
		n, err := d.uintN(1 << (c - 0xc4))
		if err != nil {
			return false
		}
		b, err := d.bytesN(n, "bin")
		if err != nil {
			return false
		}
		if p.shareBytes { // the received frame is never reused: the binary is the handler's
			dst.SetBytes(b)
			return true
		}
		out := reflect.MakeSlice(p.typ, len(b), len(b))
		reflect.Copy(out, reflect.ValueOf(b))
		dst.Set(out)
		return true
	}
	n, ok := d.header(false)
	if !ok {
		return false
	}
	out := reflect.MakeSlice(p.typ, int(n), int(n))
	for i := 0; i < int(n); i++ {
		if !d.into(out.Index(i), p.elem, depth+1) {
			return false
		}
	}
	dst.Set(out)
	return true
}

// intoArray fills the array's elements in place; extra items are ignored, missing ones zeroed.
func (d *decoder) intoArray(dst reflect.Value, p *plan, depth int) bool {
	n, ok := d.header(false)
	if !ok {
		return false
	}
	for i := 0; i < int(n); i++ {
		if i >= dst.Len() {
			if d.skip() != nil {
				return false
			}
			continue
		}
		if !d.into(dst.Index(i), p.elem, depth+1) {
			return false
		}
	}
	for i := int(n); i < dst.Len(); i++ {
		dst.Index(i).SetZero()
	}
	return true
}

// intoMap adds the entries to the map (made when nil), each value decoded into a fresh element.
func (d *decoder) intoMap(dst reflect.Value, p *plan, depth int) bool {
	n, ok := d.header(true)
	if !ok {
		return false
	}
	if dst.IsNil() {
		dst.Set(reflect.MakeMapWithSize(p.typ, int(n)))
	}
	kt, et := p.typ.Key(), p.typ.Elem()
	for i := uint64(0); i < n; i++ {
		k, err := d.key(i)
		if err != nil {
			return false
		}
		key := reflect.New(kt).Elem()
		switch kt.Kind() {
		case reflect.String:
			key.SetString(k)
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			x, err := strconv.ParseInt(k, 10, 64)
			if err != nil || key.OverflowInt(x) {
				return false
			}
			key.SetInt(x)
		default: // the unsigned kinds: the plan allows no other
			x, err := strconv.ParseUint(k, 10, 64)
			if err != nil || key.OverflowUint(x) {
				return false
			}
			key.SetUint(x)
		}
		elem := reflect.New(et).Elem()
		if !d.into(elem, p.elem, depth+1) {
			return false
		}
		dst.SetMapIndex(key, elem)
	}
	return true
}

// intoStruct fills the fields the keys name (exactly, else but for case); other keys are skipped.
func (d *decoder) intoStruct(dst reflect.Value, p *plan, depth int) bool {
	n, ok := d.header(true)
	if !ok {
		return false
	}
	for i := uint64(0); i < n; i++ {
		kn, ok := d.strHeader()
		if !ok {
			return false
		}
		key, err := d.bytesN(kn, "str")
		if err != nil {
			return false
		}
		f := p.lookup(key)
		if f == nil {
			if d.skip() != nil {
				return false
			}
			continue
		}
		fv, err := structs.FieldToFill(dst, f.index) // an error: assign refuses it too
		if err != nil || !d.into(fv, f.plan, depth+1) {
			return false
		}
	}
	return true
}

// lookup returns the field a key fills, as structs.Set.Lookup does: an exact match first.
func (p *plan) lookup(key []byte) *fieldPlan {
	for i := range p.fields {
		if p.fields[i].name == string(key) { // compared without a copy
			return &p.fields[i]
		}
	}
	for i := range p.fields {
		if bytes.EqualFold(p.fields[i].nameBytes, key) {
			return &p.fields[i]
		}
	}
	return nil
}
