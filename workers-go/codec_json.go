package aspectipc

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// JSONCodec is the control channel's codec: compact UTF-8 JSON (RFC 8259). It keeps integers
// integers (int64/uint64) and floats floats on decode, writes <, > and & unescaped, and refuses
// what JSON cannot carry: NaN, ±Infinity and binary ([]byte) are codec errors, never silently
// converted (encoding/json alone would base64 a []byte).
type JSONCodec struct{}

// Name returns "json".
func (JSONCodec) Name() string { return "json" }

// Encode returns the compact JSON text for value.
func (c JSONCodec) Encode(value any) ([]byte, error) {
	if err := checkJSONValue(reflect.ValueOf(value), 0); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(value); err != nil {
		return nil, c.wrap("cannot encode value", err)
	}
	out := buf.Bytes()
	return out[:len(out)-1], nil // json.Encoder ends every value with '\n'
}

// Decode returns the generic value of one JSON text. Invalid UTF-8, invalid JSON, trailing data
// and integers outside [-2^63, 2^64-1] are codec errors.
func (c JSONCodec) Decode(payload []byte) (any, error) {
	if !utf8.Valid(payload) {
		return nil, &CodecError{Codec: "json", Message: "text is not valid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var value any
	if err := dec.Decode(&value); err != nil {
		return nil, c.wrap("invalid JSON", err)
	}
	if rest := payload[dec.InputOffset():]; len(bytes.TrimLeft(rest, " \t\r\n")) > 0 {
		return nil, &CodecError{Codec: "json", Message: "invalid JSON: trailing data after the value"}
	}
	return convertJSONNumbers(value)
}

// Unmarshal decodes one JSON text into target, a pointer to your own type, with the same rules as
// MessagePackCodec.Unmarshal (encoding/json's, plus integers accepted where floats are expected).
func (c JSONCodec) Unmarshal(payload []byte, target any) error {
	generic, err := c.Decode(payload)
	if err != nil {
		return err
	}
	if err := assign(target, generic); err != nil {
		return &CodecError{Codec: "json", Message: err.Error()}
	}
	return nil
}

func (JSONCodec) wrap(what string, err error) error {
	var ce *CodecError
	if errors.As(err, &ce) {
		return ce
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if errors.Is(err, io.EOF) {
		msg = "empty input"
	}
	return &CodecError{Codec: "json", Message: what + ": " + msg}
}

// convertJSONNumbers replaces the json.Number leaves of a decoded value with int64, uint64 or
// float64, in place.
func convertJSONNumbers(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		return jsonNumber(string(x))
	case []any:
		for i, e := range x {
			n, err := convertJSONNumbers(e)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	case map[string]any:
		for k, e := range x {
			n, err := convertJSONNumbers(e)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	}
	return v, nil
}

func jsonNumber(s string) (any, error) {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return u, nil
		}
		return nil, &CodecError{Codec: "json", Message: "integer " + s + " is outside [-2^63, 2^64-1]"}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, &CodecError{Codec: "json", Message: "number " + s + " does not fit a 64-bit float"}
	}
	return f, nil
}

var (
	jsonMarshalerType = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	textMarshalerType = reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem()
)

// maxCheckDepth bounds the walk of checkJSONValue; deeper values (or cycles) are left to
// encoding/json, which reports cycles itself.
const maxCheckDepth = 1000

// checkJSONValue walks value the way encoding/json will and rejects binary and non-finite floats,
// which JSON has no form for, with an error that says what to do instead.
func checkJSONValue(v reflect.Value, depth int) error {
	if !v.IsValid() || depth > maxCheckDepth {
		return nil
	}
	t := v.Type()
	if implementsMarshaler(t) || v.CanAddr() && implementsMarshaler(reflect.PointerTo(t)) {
		return nil // the type decides its own JSON form
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return checkJSONValue(v.Elem(), depth+1)
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			return &CodecError{Codec: "json", Message: fmt.Sprintf("%v has no JSON form: send it on the data channel (MessagePack) or as a string", f)}
		}
	case reflect.Slice:
		if v.IsNil() {
			return nil // written as null
		}
		if t.Elem().Kind() == reflect.Uint8 && !implementsMarshaler(reflect.PointerTo(t.Elem())) {
			return &CodecError{Codec: "json", Message: fmt.Sprintf("binary value (%s) has no JSON form: send it on the data channel, or encode the bytes as a string first", t)}
		}
		fallthrough
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			if err := checkJSONValue(v.Index(i), depth+1); err != nil {
				return err
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			if err := checkJSONValue(iter.Value(), depth+1); err != nil {
				return err
			}
		}
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if !f.IsExported() && !f.Anonymous || tag == "-" {
				continue
			}
			if _, opts, _ := strings.Cut(tag, ","); strings.Contains(opts, "omitempty") && isEmptyValue(v.Field(i)) {
				continue // left out by encoding/json
			}
			if err := checkJSONValue(v.Field(i), depth+1); err != nil {
				return err
			}
		}
	}
	return nil
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
