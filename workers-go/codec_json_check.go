package aspectipc

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/msgpack"
)

var (
	jsonMarshalerType = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	textMarshalerType = reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem()
	jsonNumberType    = reflect.TypeOf(json.Number(""))
)

// errWriteTyped is checkJSONValue's answer for a value encoding/json would write wrong (a big.Int
// that is not addressable, as {}): the JSON writer writes it itself (writeTyped). jsonAt passes it
// on as it is.
var errWriteTyped = errors.New("written by the codec")

// maxCheckHops bounds the pointers and interfaces followed by checkJSONValue; a chain that long is
// a cycle, which encoding/json reports itself.
const maxCheckHops = 10000

// checkJSONValue walks value the way encoding/json will and rejects what it would let through or
// change: binary, non-finite floats, invalid UTF-8 (lone surrogates included), integers outside
// [-2^63, 2^64-1], maps whose keys are not strings (encoding/json writes integer and
// TextMarshaler keys as text) and nesting deeper than 512 containers (depth: the containers
// around v), with an error that says what to do instead.
var bigIntType = reflect.TypeOf(big.Int{})

func checkJSONValue(v reflect.Value, depth, hops int) error {
	if !v.IsValid() || hops > maxCheckHops {
		return nil
	}
	t := v.Type()
	switch {
	case t == bigIntType:
		b := v.Interface().(big.Int)
		if err := checkBigInt(&b); err != nil || v.CanAddr() {
			return err
		}
		return errWriteTyped // encoding/json would write {}
	case t == reflect.PointerTo(bigIntType):
		if !v.IsNil() {
			return checkBigInt(v.Interface().(*big.Int))
		}
		return nil
	case t == jsonNumberType:
		_, err := jsonNumber(v.String())
		return err
	}
	if implementsMarshaler(t) || v.CanAddr() && implementsMarshaler(reflect.PointerTo(t)) {
		return nil // the type decides its own JSON form; Encode scans it afterwards
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return checkJSONValue(v.Elem(), depth, hops+1)
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			return nonFiniteError(f)
		}
	case reflect.String:
		if s := v.String(); !utf8.ValidString(s) {
			return invalidStringError(s)
		}
	case reflect.Slice:
		if v.IsNil() {
			return nil // written as null
		}
		if t.Elem().Kind() == reflect.Uint8 && !implementsMarshaler(reflect.PointerTo(t.Elem())) {
			return &CodecError{Codec: "json", Message: fmt.Sprintf("binary value (%s) has no JSON form: send it on the data channel, encode the bytes as a string first, or set EncodeHook on JSONCodec", t)}
		}
		fallthrough
	case reflect.Array:
		if depth >= maxNestingDepth {
			return jsonDepthError()
		}
		for i := 0; i < v.Len(); i++ {
			if err := checkJSONValue(v.Index(i), depth+1, hops); err != nil {
				return jsonAt(err, "", i)
			}
		}
	case reflect.Map:
		if t.Key().Kind() != reflect.String { // refused whole, as by the MessagePack codec
			return msgpack.NonStringKeyError(v)
		}
		if depth >= maxNestingDepth {
			return jsonDepthError()
		}
		iter := v.MapRange()
		for iter.Next() {
			key := iter.Key().String()
			if !utf8.ValidString(key) {
				return invalidStringError(key)
			}
			if err := checkJSONValue(iter.Value(), depth+1, hops); err != nil {
				return jsonAt(err, key, -1)
			}
		}
	case reflect.Struct:
		if depth >= maxNestingDepth {
			return jsonDepthError()
		}
		return checkJSONStruct(v, depth, hops)
	}
	return nil
}

func checkJSONStruct(v reflect.Value, depth, hops int) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if !f.IsExported() && !f.Anonymous || tag == "-" {
			continue
		}
		if _, opts, _ := strings.Cut(tag, ","); strings.Contains(opts, "omitempty") && isEmptyValue(v.Field(i)) {
			continue // left out by encoding/json
		}
		inner := depth + 1
		if f.Anonymous {
			inner = depth // embedded fields are written into this object
		}
		if err := checkJSONValue(v.Field(i), inner, hops); err != nil {
			if f.Anonymous {
				return err
			}
			name, _, _ := strings.Cut(tag, ",")
			return jsonAt(err, cmpOr(name, f.Name), -1)
		}
	}
	return nil
}

func checkBigInt(b *big.Int) error {
	if b.IsInt64() || b.IsUint64() {
		return nil
	}
	return &CodecError{Codec: "json", Message: fmt.Sprintf("integer %s is outside [-2^63, 2^64-1]", truncateForError(b.String()))}
}

func implementsMarshaler(t reflect.Type) bool {
	return t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType)
}

// isEmptyValue is encoding/json's notion of empty, for omitempty.
func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Interface, reflect.Pointer:
		return v.IsNil()
	}
	return v.IsZero() && v.Kind() != reflect.Struct
}
