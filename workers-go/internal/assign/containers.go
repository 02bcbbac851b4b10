package assign

import (
	"fmt"
	"reflect"
	"strconv"
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
		f := fields.Lookup(k)
		if f == nil {
			continue // unknown keys are ignored, as with encoding/json
		}
		fv, err := fieldByIndex(dst, f.Index)
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

// mayUnmarshal reports whether values of type t may bring their own decoding (a json.Unmarshaler
// or encoding.TextUnmarshaler on *t), without the reflection that checking costs on every value:
// predeclared types and unnamed non-struct types have no methods, and structs are answered from
// the field cache.
func mayUnmarshal(t reflect.Type, path *fieldPath) bool {
	switch {
	case t.Kind() == reflect.Interface:
		return false // an interface holds what it is given: it is never decoded through methods
	case t.Kind() == reflect.Struct:
		return path.fields(t).Unmarshals
	case t.Name() == "":
		return false // []T, map[K]V, *T, [N]T: no methods of their own
	}
	return t.PkgPath() != "" // int, string, float64... have none
}
