package assign

import (
	"reflect"
	"strconv"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/structs"
)

func assignSlice(dst reflect.Value, src any, path *fieldPath) error {
	if b, ok := src.([]byte); ok && dst.Type().Elem().Kind() == reflect.Uint8 {
		if path.opts.ShareBinary && dst.Type() == bytesType {
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
	if len(path.segs) >= maxNesting {
		return tooDeep(path)
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
	if len(path.segs) >= maxNesting {
		return tooDeep(path)
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
	if len(path.segs) >= maxNesting {
		return tooDeep(path)
	}
	fields := path.fields(dst.Type())
	if done, err := path.keys.fill(dst, m, fields, path); done {
		return err
	}
	if n := len(fields.List); n >= len(m) && n <= 2*len(m) {
		return assignStructByField(dst, m, fields, path)
	}
	return assignStructByWalk(dst, m, fields, path)
}

// assignStructByField is assignStruct for a struct with about as many fields as the map has keys
// (the struct of each element of an array of maps, typically): each field's name is looked up in
// the map, which costs less than iterating over the map; the map is iterated over only when keys
// remain that match no name exactly, for those (unknown keys and case-insensitive matches).
func assignStructByField(dst reflect.Value, m map[string]any, fields *structs.Set, path *fieldPath) error {
	exact := 0
	for i := range fields.List {
		f := &fields.List[i]
		if item, found := m[f.Name]; found {
			exact++
			if err := assignField(dst, f, f.Name, item, path); err != nil {
				return err
			}
		}
	}
	if exact == len(m) {
		return nil
	}
	for k, item := range m {
		if f := fields.Lookup(k); f != nil && f.Name != k { // an exact match is done already
			if err := assignField(dst, f, k, item, path); err != nil {
				return err
			}
		}
	}
	return nil
}

// assignField stores the value of key k into field f of dst.
func assignField(dst reflect.Value, f *structs.Field, k string, item any, path *fieldPath) error {
	fv, err := structs.FieldToFill(dst, f.Index)
	if err != nil {
		path.push(pathEntry, k, 0)
		return fieldError(path, "%v", err)
	}
	path.push(pathField, k, 0)
	err = assignValue(fv, item, path)
	path.pop()
	return err
}

// mayUnmarshal reports whether values of type t may bring their own decoding (a json.Unmarshaler
// or encoding.TextUnmarshaler on *t), without the reflection that checking costs on every value:
// predeclared types and unnamed non-struct types have no methods, and structs are answered from
// the field cache.
func mayUnmarshal(t reflect.Type, path *fieldPath) bool {
	switch k := t.Kind(); {
	case int(k) < len(predeclared) && predeclared[k] == t:
		return false // float64, int64, string...: the common case, answered without a name lookup
	case k == reflect.Interface:
		return false // an interface holds what it is given: it is never decoded through methods
	case k == reflect.Struct:
		return path.fields(t).Unmarshals
	case t.Name() == "":
		return false // []T, map[K]V, *T, [N]T: no methods of their own
	}
	return t.PkgPath() != "" // int, string, float64... have none
}

// predeclared holds the predeclared type of each basic kind, indexed by kind.
var predeclared = [...]reflect.Type{
	reflect.Bool: reflect.TypeOf(false), reflect.String: reflect.TypeOf(""),
	reflect.Int: reflect.TypeOf(0), reflect.Int8: reflect.TypeOf(int8(0)), reflect.Int16: reflect.TypeOf(int16(0)),
	reflect.Int32: reflect.TypeOf(int32(0)), reflect.Int64: reflect.TypeOf(int64(0)),
	reflect.Uint: reflect.TypeOf(uint(0)), reflect.Uint8: reflect.TypeOf(uint8(0)), reflect.Uint16: reflect.TypeOf(uint16(0)),
	reflect.Uint32: reflect.TypeOf(uint32(0)), reflect.Uint64: reflect.TypeOf(uint64(0)), reflect.Uintptr: reflect.TypeOf(uintptr(0)),
	reflect.Float32: reflect.TypeOf(float32(0)), reflect.Float64: reflect.TypeOf(float64(0)),
}
