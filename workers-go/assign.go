package aspectipc

import (
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// assign stores a generic value (as decoded by either codec) into target, a non-nil pointer, with
// encoding/json's rules: struct fields by `json` tag or name (exact match first, then
// case-insensitive), unknown keys ignored, null leaves non-nullable values untouched. It is shared
// by both codecs, so that params decode the same way on either channel. Beyond encoding/json: an
// integer is accepted where a float is expected (JavaScript writes integral floats as integers),
// and bin fills a []byte.
func assign(target any, value any) error {
	return assignWith(target, value, &fieldPath{})
}

// assignShared is assign for values whose binaries belong to nobody else (those decoded from a
// received frame, which the framing never reuses): a []byte target gets the binary itself rather
// than a copy of it.
func assignShared(target any, value any) error {
	return assignWith(target, value, &fieldPath{shareBinary: true})
}

func assignWith(target any, value any, state *fieldPath) error {
	v := reflect.ValueOf(target)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("cannot decode into %T: need a non-nil pointer", target)
	}
	return assignValue(v.Elem(), value, state)
}

// fieldPath is the state of one assign: where the value being decoded sits, for error messages
// (items[3].value), as a stack of segments pushed and popped around each step down and rendered
// only when an error is reported, so that decoding builds no strings; and the fields of the
// struct type decoded last, so that the elements of a slice of structs skip the shared cache.
type fieldPath struct {
	segs        []pathSegment
	lastType    reflect.Type
	lastFields  *fieldSet
	shareBinary bool // see assignShared
}

// fields returns structFields(t), remembering the last answer.
func (p *fieldPath) fields(t reflect.Type) *fieldSet {
	if t != p.lastType {
		p.lastType, p.lastFields = t, structFields(t)
	}
	return p.lastFields
}

type pathSegment struct {
	kind  pathKind
	key   string
	index int
}

type pathKind uint8

const (
	pathField pathKind = iota // .key, or key at the top
	pathEntry                 // .key always (map entries)
	pathIndex                 // [index]
)

func (p *fieldPath) push(kind pathKind, key string, index int) {
	p.segs = append(p.segs, pathSegment{kind: kind, key: key, index: index})
}

func (p *fieldPath) pop() { p.segs = p.segs[:len(p.segs)-1] }

func (p *fieldPath) String() string {
	var b strings.Builder
	for _, seg := range p.segs {
		switch {
		case seg.kind == pathIndex:
			b.WriteString("[" + strconv.Itoa(seg.index) + "]")
		case seg.kind == pathEntry || b.Len() > 0:
			b.WriteString("." + seg.key)
		default:
			b.WriteString(seg.key)
		}
	}
	return b.String()
}

var bytesType = reflect.TypeOf([]byte(nil))

var jsonUnmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
var textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()

func assignValue(dst reflect.Value, src any, path *fieldPath) error {
	if dst.CanAddr() && mayUnmarshal(dst.Type(), path) {
		if u, ok := dst.Addr().Interface().(json.Unmarshaler); ok && dst.Kind() != reflect.Interface {
			text, err := JSONCodec{}.Encode(src)
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

func assignSlice(dst reflect.Value, src any, path *fieldPath) error {
	if b, ok := src.([]byte); ok && dst.Type().Elem().Kind() == reflect.Uint8 {
		if path.shareBinary && dst.Type() == bytesType {
			dst.SetBytes(b)
			return nil
		}
		out := reflect.MakeSlice(dst.Type(), len(b), len(b))
		reflect.Copy(out, reflect.ValueOf(b))
		dst.Set(out)
		return nil
	}
	items, ok := src.([]any)
	if !ok {
		return mismatch(path, dst.Type(), src)
	}
	out := reflect.MakeSlice(dst.Type(), len(items), len(items))
	for i, item := range items {
		path.push(pathIndex, "", i)
		err := assignValue(out.Index(i), item, path)
		path.pop()
		if err != nil {
			return err
		}
	}
	dst.Set(out)
	return nil
}

func assignMap(dst reflect.Value, src any, path *fieldPath) error {
	m, ok := src.(map[string]any)
	if !ok {
		return mismatch(path, dst.Type(), src)
	}
	t := dst.Type()
	if dst.IsNil() {
		dst.Set(reflect.MakeMapWithSize(t, len(m)))
	}
	for k, item := range m {
		key := reflect.New(t.Key()).Elem()
		switch t.Key().Kind() {
		case reflect.String:
			key.SetString(k)
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			n, err := strconv.ParseInt(k, 10, 64)
			if err != nil || key.OverflowInt(n) {
				return fieldError(path, "map key %q is not a %s", k, t.Key())
			}
			key.SetInt(n)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			n, err := strconv.ParseUint(k, 10, 64)
			if err != nil || key.OverflowUint(n) {
				return fieldError(path, "map key %q is not a %s", k, t.Key())
			}
			key.SetUint(n)
		default:
			return fieldError(path, "cannot decode into a map with keys of type %s", t.Key())
		}
		elem := reflect.New(t.Elem()).Elem()
		path.push(pathEntry, k, 0)
		err := assignValue(elem, item, path)
		path.pop()
		if err != nil {
			return err
		}
		dst.SetMapIndex(key, elem)
	}
	return nil
}

func assignStruct(dst reflect.Value, src any, path *fieldPath) error {
	m, ok := src.(map[string]any)
	if !ok {
		return mismatch(path, dst.Type(), src)
	}
	fields := path.fields(dst.Type())
	for k, item := range m {
		f := fields.lookup(k)
		if f == nil {
			continue // unknown keys are ignored, as with encoding/json
		}
		fv, err := fieldByIndex(dst, f.index)
		if err != nil {
			path.push(pathEntry, k, 0)
			return fieldError(path, "%v", err)
		}
		path.push(pathField, k, 0)
		err = assignValue(fv, item, path)
		path.pop()
		if err != nil {
			return err
		}
	}
	return nil
}

// fieldByIndex walks to a (possibly promoted) field, allocating nil embedded pointers.
func fieldByIndex(v reflect.Value, index []int) (reflect.Value, error) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				if !v.CanSet() {
					return v, fmt.Errorf("cannot set an embedded pointer to an unexported struct %s", v.Type().Elem())
				}
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, nil
}

type fieldInfo struct {
	name  string
	index []int
}

type fieldSet struct {
	byName []fieldInfo
	// unmarshals: a pointer to the struct is a json.Unmarshaler or an encoding.TextUnmarshaler.
	unmarshals bool
}

func (s *fieldSet) lookup(key string) *fieldInfo {
	for i := range s.byName {
		if s.byName[i].name == key {
			return &s.byName[i]
		}
	}
	for i := range s.byName {
		if strings.EqualFold(s.byName[i].name, key) {
			return &s.byName[i]
		}
	}
	return nil
}

var fieldCache sync.Map // reflect.Type -> *fieldSet

// structFields lists the fields a JSON object maps to, with encoding/json's naming rules and
// embedded structs promoted (the shallowest field wins a name).
func structFields(t reflect.Type) *fieldSet {
	if cached, ok := fieldCache.Load(t); ok {
		return cached.(*fieldSet)
	}
	pt := reflect.PointerTo(t)
	set := &fieldSet{unmarshals: pt.Implements(jsonUnmarshalerType) || pt.Implements(textUnmarshalerType)}
	depth := map[string]int{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() && !(f.Anonymous && isStructOrPtrToStruct(f.Type)) {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && isStructOrPtrToStruct(f.Type) {
			continue // its fields are promoted and listed by VisibleFields
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if d, seen := depth[name]; seen && d <= len(f.Index) {
			continue
		}
		depth[name] = len(f.Index)
		set.byName = append(set.byName, fieldInfo{name: name, index: f.Index})
	}
	fieldCache.Store(t, set)
	return set
}

func isStructOrPtrToStruct(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct
}

// mayUnmarshal reports whether values of type t may bring their own decoding (a json.Unmarshaler
// or encoding.TextUnmarshaler on *t), without the reflection that checking costs on every value:
// predeclared types and unnamed non-struct types have no methods, and structs are answered from
// the field cache.
func mayUnmarshal(t reflect.Type, path *fieldPath) bool {
	switch {
	case t.Kind() == reflect.Interface:
		return false // an interface holds what it is given: it is never decoded through methods
	case t.Kind() == reflect.Struct:
		return path.fields(t).unmarshals
	case t.Name() == "":
		return false // []T, map[K]V, *T, [N]T: no methods of their own
	}
	return t.PkgPath() != "" // int, string, float64... have none
}

func fieldError(path *fieldPath, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if p := path.String(); p != "" {
		msg = p + ": " + msg
	}
	return fmt.Errorf("%s", msg)
}

func mismatch(path *fieldPath, want reflect.Type, got any) error {
	return fieldError(path, "expected %s, got %s", kindName(want), valueKindName(got))
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "binary or an array"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "a map"
	}
	return t.String()
}

func valueKindName(v any) string {
	switch v.(type) {
	case bool:
		return "a boolean"
	case int64, uint64:
		return "an integer"
	case float64:
		return "a float"
	case string:
		return "a string"
	case []byte:
		return "binary"
	case []any:
		return "an array"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("%T", v)
}
