package msgpack

import (
	"fmt"
	"reflect"
	"sort"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/structs"
)

// encodeReflect writes a value that Encode's switch does not know, by its type: the type's own
// encoding if it has one (see Encoder.ownOf), else by its kind.
func (e *Encoder) encodeReflect(v reflect.Value, depth int) error {
	if k := v.Kind(); k == reflect.Pointer || k == reflect.Interface {
		return e.encodeKind(v, depth) // nil, or the value it points to, by its own type
	}
	switch own := e.ownOf(v, v.Type()); own {
	case byKind, viaSwitch: // viaSwitch: a value Encode's switch cannot be given (see encodeElem)
		return e.encodeKind(v, depth)
	default:
		return e.encodeOwn(v, own, depth)
	}
}

// encodeKind writes v by its kind, the type having no encoding of its own.
func (e *Encoder) encodeKind(v reflect.Value, depth int) error {
	t := v.Type()
	switch v.Kind() {
	case reflect.Bool:
		return e.Encode(v.Bool(), depth)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.writeInt(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.writeUint(v.Uint())
	case reflect.Float32, reflect.Float64:
		e.writeFloat(v.Float())
	case reflect.String:
		return e.writeString(v.String())
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			e.Buf = append(e.Buf, 0xc0)
			return nil
		}
		if e.hops++; e.hops > maxEncodeHops {
			return invalid(t.String(), fmt.Sprintf(" is more than %d pointers deep (a cycle?)", maxEncodeHops))
		}
		err := e.encodeElem(v.Elem(), depth)
		e.hops--
		return err
	case reflect.Slice:
		if v.IsNil() {
			e.Buf = append(e.Buf, 0xc0)
			return nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			e.writeBin(v.Bytes())
			return nil
		}
		fallthrough
	case reflect.Array:
		if depth >= MaxNestingDepth {
			return depthError()
		}
		e.writeArrayHeader(v.Len())
		for i := 0; i < v.Len(); i++ {
			if err := e.encodeElem(v.Index(i), depth+1); err != nil {
				return AtIndex(err, i)
			}
		}
	case reflect.Map:
		return e.encodeMap(v, depth)
	case reflect.Struct:
		return e.encodeStruct(v, depth)
	default: // chan, func, complex, unsafe.Pointer
		return e.refuse(v, depth, &EncodeError{Kind: Unsupported, Type: t})
	}
	return nil
}

// refuse is the failure fail for v, a value the mapping has no form for, unless the hook gives a
// value to write instead.
func (e *Encoder) refuse(v reflect.Value, depth int, fail *EncodeError) error {
	if e.Hook == nil || !v.CanInterface() {
		return fail
	}
	if e.hookDepth >= MaxHookDepth {
		return &EncodeError{Kind: HookLoop, Type: v.Type()}
	}
	replacement, err := CallEncodeHook(e.Hook, v.Interface())
	if err != nil {
		return err
	}
	e.hookDepth++
	err = e.Encode(replacement, depth)
	e.hookDepth--
	return err
}

// encodeElem writes an element or a field. A value without an encoding of its own (a plain
// struct, a named number or string) is written from its reflect.Value rather than boxed into an
// interface first (which would copy it to the heap), and so are the values that cannot give their
// Interface() (reached through unexported embedded structs). An addressable value (an element of
// a slice, a field of a struct reached through a pointer) is written by the methods of its
// pointer too, as encoding/json does.
func (e *Encoder) encodeElem(v reflect.Value, depth int) error {
	t := v.Type()
	switch v.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.String:
		if t.PkgPath() == "" { // a predeclared type: no methods, nothing to box
			return e.encodeKind(v, depth)
		}
	case reflect.Slice, reflect.Array, reflect.Map:
		if t.Name() == "" { // unnamed: no methods, nor has its pointer
			if t.Elem().Kind() == reflect.Interface && v.CanInterface() {
				return e.Encode(v.Interface(), depth) // []any and map[string]any have cases of their own
			}
			return e.encodeKind(v, depth)
		}
	case reflect.Pointer, reflect.Interface:
		if v.CanInterface() {
			return e.Encode(v.Interface(), depth) // *big.Int, an Appender...
		}
		return e.encodeKind(v, depth)
	}
	switch own := e.ownOf(v, t); own {
	case byKind:
		return e.encodeKind(v, depth)
	case viaSwitch:
		if v.CanInterface() {
			return e.Encode(v.Interface(), depth)
		}
		return e.encodeKind(v, depth)
	default:
		return e.encodeOwn(v, own, depth)
	}
}

func (e *Encoder) encodeMap(v reflect.Value, depth int) error {
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		if e.Hook == nil {
			return NonStringKeyError(v)
		}
		return e.refuse(v, depth, &EncodeError{Kind: NonStringKey, Type: t.Key()})
	}
	if v.IsNil() {
		e.Buf = append(e.Buf, 0xc0)
		return nil
	}
	if depth >= MaxNestingDepth {
		return depthError()
	}
	keys := v.MapKeys()
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	e.writeMapHeader(len(keys))
	for _, k := range keys {
		if err := e.writeString(k.String()); err != nil {
			return err
		}
		if err := e.encodeElem(v.MapIndex(k), depth+1); err != nil {
			return AtKey(err, k.String())
		}
	}
	return nil
}

// encodeStruct writes a struct as a map of its fields (internal/structs: encoding/json's names,
// omitempty, embedded structs promoted), sorted by name like any map.
func (e *Encoder) encodeStruct(v reflect.Value, depth int) error {
	if depth >= MaxNestingDepth {
		return depthError()
	}
	fields := structs.Of(v.Type()).Sorted
	var small [16]reflect.Value // most structs: no allocation for their field values
	values := small[:0]
	n := 0
	for _, f := range fields {
		fv, ok := fieldByIndex(v, f.Index)
		if !ok || f.OmitEmpty && isEmptyValue(fv) {
			fv = reflect.Value{}
		} else {
			n++
		}
		values = append(values, fv)
	}
	e.writeMapHeader(n)
	for i, f := range fields {
		if !values[i].IsValid() {
			continue
		}
		if err := e.writeString(f.Name); err != nil {
			return err
		}
		if err := e.encodeElem(values[i], depth+1); err != nil {
			return AtKey(err, f.Name)
		}
	}
	return nil
}

// NonStringKeyError is the failure for map m, whose keys are not strings (of a kind other than
// string): it names one of its keys, and that key's type, when m has one. The JSON codec, whose
// encoding/json would write integer and TextMarshaler keys as text, refuses such maps with it too.
func NonStringKeyError(m reflect.Value) *EncodeError {
	fail := &EncodeError{Kind: NonStringKey, Type: m.Type().Key()}
	if iter := m.MapRange(); iter.Next() {
		fail.Key, fail.Type = keyText(iter.Key())
	}
	return fail
}

// keyText renders a map key for an error message (1, "a", true), with its dynamic type.
func keyText(k reflect.Value) (string, reflect.Type) {
	for k.Kind() == reflect.Interface || k.Kind() == reflect.Pointer {
		if k.IsNil() {
			return "nil", k.Type()
		}
		k = k.Elem()
	}
	switch {
	case k.Kind() == reflect.String:
		return quoteKey(k.String()), k.Type()
	case k.CanInterface():
		return truncateForError(fmt.Sprint(k.Interface())), k.Type()
	}
	return "?", k.Type()
}

// fieldByIndex walks to a (possibly promoted) field; false when a nil embedded pointer holds it.
func fieldByIndex(v reflect.Value, index []int) (reflect.Value, bool) {
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

// isEmptyValue is encoding/json's test for omitempty.
func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}
