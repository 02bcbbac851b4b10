package aspectipc

import (
	"math/big"
	"reflect"
	"sort"
	"strconv"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/msgpack"
	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/structs"
)

// With an encode hook, a typed value (a struct, a typed slice or map) that encoding/json refuses
// in part is written by the codec itself, so that the hook reaches the values inside it: fields
// by their `json` names in encoding/json's order, omitempty honoured, the types with their own
// MarshalJSON or MarshalText still written by encoding/json. So is a value holding a big.Int that
// is not addressable, which encoding/json would write as {} (its methods are the pointer's): the
// codec writes it as an integer, as the MessagePack codec does. Otherwise nothing of this runs.

// writeTyped writes v field by field, giving the hook what JSON has no form for.
func (w *jsonWriter) writeTyped(v reflect.Value, depth, hops int) error {
	if !v.IsValid() {
		w.buf = append(w.buf, "null"...)
		return nil
	}
	t := v.Type()
	if v.CanAddr() && v.CanInterface() && v.Kind() != reflect.Pointer && v.Kind() != reflect.Interface &&
		implementsMarshaler(reflect.PointerTo(t)) && t != bigIntType {
		// Addressable: the methods of its pointer apply, as encoding/json does.
		return w.writeOther(v.Addr().Interface(), depth)
	}
	if v.CanInterface() && v.Kind() != reflect.Interface {
		x := v.Interface()
		switch {
		case jsonRefuses(t):
			if w.hook == nil { // here for a big.Int
				return jsonRefusal(v, depth)
			}
			return w.applyHook(x, depth)
		case isGenericJSON(x):
			return w.write(x, depth)
		case t == bigIntType: // encoding/json would write a big.Int that is not addressable as {}
			b := x.(big.Int)
			if err := checkBigInt(&b); err != nil {
				return err
			}
			w.buf = b.Append(w.buf, 10)
			return nil
		case implementsMarshaler(t) || t == jsonNumberType:
			return w.writeOther(x, depth) // the type's own form
		}
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			w.buf = append(w.buf, "null"...)
			return nil
		}
		if hops > maxCheckHops {
			return &msgpack.EncodeError{Kind: msgpack.Invalid, Subject: t.String(), Predicate: " is too many pointers deep (a cycle?)"}
		}
		return w.writeTyped(v.Elem(), depth, hops+1)
	case reflect.Bool:
		w.buf = strconv.AppendBool(w.buf, v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		w.buf = strconv.AppendInt(w.buf, v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		w.buf = strconv.AppendUint(w.buf, v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return w.writeFloat(v.Float())
	case reflect.String:
		return w.writeString(v.String())
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			w.buf = append(w.buf, "null"...)
			return nil
		}
		return w.writeTypedList(v, depth, hops)
	case reflect.Map:
		if t.Key().Kind() != reflect.String { // reached through a value that cannot be handed to the hook
			return &msgpack.EncodeError{Kind: msgpack.NonStringKey, Type: t.Key()}
		}
		if v.IsNil() {
			w.buf = append(w.buf, "null"...)
			return nil
		}
		return w.writeTypedMap(v, depth, hops)
	case reflect.Struct:
		return w.writeTypedStruct(v, depth, hops)
	default: // chan, func, complex reached through a value that cannot be handed to the hook
		return &msgpack.EncodeError{Kind: msgpack.Unsupported, Type: t}
	}
	return nil
}

func (w *jsonWriter) writeTypedList(v reflect.Value, depth, hops int) error {
	if depth >= maxNestingDepth {
		return jsonDepthError()
	}
	w.buf = append(w.buf, '[')
	for i := 0; i < v.Len(); i++ {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		if err := w.writeTyped(v.Index(i), depth+1, hops); err != nil {
			return jsonAt(err, "", i)
		}
	}
	w.buf = append(w.buf, ']')
	return nil
}

// writeTypedMap writes a map with string keys (jsonRefuses sent the others to the hook), its
// members sorted by key as encoding/json does.
func (w *jsonWriter) writeTypedMap(v reflect.Value, depth, hops int) error {
	if depth >= maxNestingDepth {
		return jsonDepthError()
	}
	type member struct {
		key   string
		value reflect.Value
	}
	members := make([]member, 0, v.Len())
	iter := v.MapRange()
	for iter.Next() {
		members = append(members, member{iter.Key().String(), iter.Value()})
	}
	sort.Slice(members, func(i, j int) bool { return members[i].key < members[j].key })
	w.buf = append(w.buf, '{')
	for i, m := range members {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		if err := w.writeString(m.key); err != nil {
			return err
		}
		w.buf = append(w.buf, ':')
		if err := w.writeTyped(m.value, depth+1, hops); err != nil {
			return jsonAt(err, m.key, -1)
		}
	}
	w.buf = append(w.buf, '}')
	return nil
}

func (w *jsonWriter) writeTypedStruct(v reflect.Value, depth, hops int) error {
	if depth >= maxNestingDepth {
		return jsonDepthError()
	}
	w.buf = append(w.buf, '{')
	first := true
	for _, f := range structs.Of(v.Type()).List {
		fv, ok := jsonFieldByIndex(v, f.Index)
		if !ok || f.OmitEmpty && isEmptyValue(fv) {
			continue
		}
		if !first {
			w.buf = append(w.buf, ',')
		}
		first = false
		if err := w.writeString(f.Name); err != nil {
			return err
		}
		w.buf = append(w.buf, ':')
		if err := w.writeTyped(fv, depth+1, hops); err != nil {
			return jsonAt(err, f.Name, -1)
		}
	}
	w.buf = append(w.buf, '}')
	return nil
}

// jsonFieldByIndex walks to a (possibly promoted) field; false when a nil embedded pointer holds it.
func jsonFieldByIndex(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

// isGenericJSON reports whether the JSON writer writes x itself (a generic value, Params, Result).
func isGenericJSON(x any) bool {
	switch x.(type) {
	case nil, bool, string, int, int64, int32, uint64, uint32, float64, []any, map[string]any, Params, Result:
		return true
	}
	return false
}

// jsonRefusal is the failure for v, of a type JSON has no form for, when there is no hook.
func jsonRefusal(v reflect.Value, depth int) error {
	if err := checkJSONValue(v, depth, 0); err != nil { // binary, non-string keys: their own messages
		return err
	}
	return &msgpack.EncodeError{Kind: msgpack.Unsupported, Type: v.Type()}
}
