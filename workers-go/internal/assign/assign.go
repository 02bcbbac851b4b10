// Package assign stores a generic value (as decoded by either codec: nil, bool, int64, uint64,
// float64, string, []byte, []any, map[string]any) into a Go value, with encoding/json's rules. It
// knows nothing of the protocol: the SDK's Params.Decode, Result.Decode and the codecs' Unmarshal
// are built on it.
package assign

import (
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
)

// Options tune one Into.
type Options struct {
	// ShareBinary: the binaries of the value belong to nobody else (they were decoded from a
	// received frame, which the framing never reuses), so a []byte target gets the binary itself
	// rather than a copy of it.
	ShareBinary bool
	// EncodeJSON writes a generic value as JSON text, for the targets that decode themselves
	// (json.Unmarshaler). Required.
	EncodeJSON func(value any) ([]byte, error)
}

// Into stores value into target, a non-nil pointer, with encoding/json's rules: struct fields by
// `json` tag or name (exact match first, then case-insensitive), unknown keys ignored, null leaves
// non-nullable values untouched. Beyond encoding/json: an integer is accepted where a float is
// expected (JavaScript writes integral floats as integers), and bin fills a []byte. An error
// names the offending field (items[3].value).
func Into(target any, value any, opts Options) error {
	v := reflect.ValueOf(target)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("cannot decode into %T: need a non-nil pointer", target)
	}
	return assignValue(v.Elem(), value, &fieldPath{opts: opts})
}

var bytesType = reflect.TypeOf([]byte(nil))

// maxNesting bounds the containers assigned one inside another: a decoded value has at most 512
// levels, but a decode hook may return a cyclic one, which would be walked until the stack is
// exhausted.
const maxNesting = 10000

// tooDeep is the failure of a value nested deeper than maxNesting; its path, as long, is left out.
func tooDeep(path *fieldPath) error {
	first := path.segs[0]
	return fmt.Errorf("%s...: value nested deeper than %d levels (a cyclic value made by a decode hook?)",
		(&fieldPath{segs: []pathSegment{first}}).String(), maxNesting)
}

// isGeneric reports whether v is one of the values the codecs decode to.
func isGeneric(v any) bool {
	switch v.(type) {
	case nil, bool, int64, uint64, float64, string, []byte, []any, map[string]any:
		return true
	}
	return false
}

func assignValue(dst reflect.Value, src any, path *fieldPath) error {
	err := assignGeneric(dst, src, path)
	if err != nil && assignHooked(dst, src) {
		return nil
	}
	return err
}

// assignHooked stores src, a value a codec's decode hook made, as it is where its type fits.
func assignHooked(dst reflect.Value, src any) bool {
	if isGeneric(src) {
		return false
	}
	sv := reflect.ValueOf(src)
	if !sv.Type().AssignableTo(dst.Type()) {
		return false
	}
	dst.Set(sv)
	return true
}

// assignGeneric is assignValue for the values the codecs decode to.
func assignGeneric(dst reflect.Value, src any, path *fieldPath) error {
	if dst.CanAddr() && mayUnmarshal(dst.Type(), path) {
		if assignHooked(dst, src) { // a time.Time made by a hook, say: not through its JSON form
			return nil
		}
		if u, ok := dst.Addr().Interface().(json.Unmarshaler); ok && dst.Kind() != reflect.Interface {
			text, err := path.opts.EncodeJSON(src)
			if err != nil {
				return fieldError(path, "cannot hand the value to %s.UnmarshalJSON: %v", dst.Type(), err)
			}
			if err := u.UnmarshalJSON(text); err != nil {
				return fieldError(path, "%v", err)
			}
			return nil
		}
		if u, ok := dst.Addr().Interface().(encoding.TextUnmarshaler); ok && dst.Kind() != reflect.Interface {
			if s, isString := src.(string); isString {
				if err := u.UnmarshalText([]byte(s)); err != nil {
					return fieldError(path, "%v", err)
				}
				return nil
			}
		}
	}
	if src == nil {
		switch dst.Kind() {
		case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
			dst.SetZero()
		}
		return nil
	}
	switch dst.Kind() {
	case reflect.Pointer:
		if dst.IsNil() {
			dst.Set(reflect.New(dst.Type().Elem()))
		}
		return assignValue(dst.Elem(), src, path)
	case reflect.Interface:
		sv := reflect.ValueOf(src)
		if !sv.Type().AssignableTo(dst.Type()) {
			return mismatch(path, dst.Type(), src)
		}
		dst.Set(sv)
	case reflect.Bool:
		b, ok := src.(bool)
		if !ok {
			return mismatch(path, dst.Type(), src)
		}
		dst.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := src.(int64)
		if u, isUint := src.(uint64); isUint {
			// The codecs decode an integer as uint64 only above math.MaxInt64: too large for
			// any signed type, an overflow rather than a mismatch of kinds.
			if u > math.MaxInt64 {
				return fieldError(path, "%d overflows %s", u, dst.Type())
			}
			n, ok = int64(u), true
		}
		if !ok {
			return mismatch(path, dst.Type(), src)
		}
		if dst.OverflowInt(n) {
			return fieldError(path, "%d overflows %s", n, dst.Type())
		}
		dst.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		var n uint64
		switch x := src.(type) {
		case uint64:
			n = x
		case int64:
			if x < 0 {
				return fieldError(path, "%d is negative, %s is unsigned", x, dst.Type())
			}
			n = uint64(x)
		default:
			return mismatch(path, dst.Type(), src)
		}
		if dst.OverflowUint(n) {
			return fieldError(path, "%d overflows %s", n, dst.Type())
		}
		dst.SetUint(n)
	case reflect.Float32, reflect.Float64:
		var f float64
		switch x := src.(type) {
		case float64:
			f = x
		case int64:
			f = float64(x)
		case uint64:
			f = float64(x)
		default:
			return mismatch(path, dst.Type(), src)
		}
		if dst.Kind() == reflect.Float32 && !math.IsInf(f, 0) && math.IsInf(float64(float32(f)), 0) {
			return fieldError(path, "%v overflows float32", f)
		}
		dst.SetFloat(f)
	case reflect.String:
		s, ok := src.(string)
		if !ok {
			return mismatch(path, dst.Type(), src)
		}
		dst.SetString(s)
	case reflect.Slice:
		return assignSlice(dst, src, path)
	case reflect.Array:
		items, ok := src.([]any)
		if !ok {
			return mismatch(path, dst.Type(), src)
		}
		if len(path.segs) >= maxNesting {
			return tooDeep(path)
		}
		for i := 0; i < dst.Len(); i++ {
			if i >= len(items) {
				dst.Index(i).SetZero()
				continue
			}
			path.push(pathIndex, "", i)
			err := assignValue(dst.Index(i), items[i], path)
			path.pop()
			if err != nil {
				return err
			}
		}
	case reflect.Map:
		return assignMap(dst, src, path)
	case reflect.Struct:
		return assignStruct(dst, src, path)
	default:
		return fieldError(path, "cannot decode into a value of type %s", dst.Type())
	}
	return nil
}
