package msgpack

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/jsontext"
)

// The types with an encoding of their own are written as the JSON codec writes them
// (encoding/json's rules), so that a value arrives as the same value whichever channel it is sent
// on (PROTOCOL.md 3): a json.Marshaler as the value its JSON text holds, else an
// encoding.TextMarshaler as its text. As with encoding/json, the methods of the pointer apply to
// an addressable value (an element of a slice, a field of a struct reached through a pointer), a
// nil pointer is nil without a call, and MarshalJSON comes before MarshalText. Two types are the
// codec's own: big.Int is an integer, and time.Time, which encoding/json writes as RFC 3339 text,
// is refused (given to the encode hook), as Python's datetime is.

var (
	bigIntType        = reflect.TypeOf(big.Int{})
	timeType          = reflect.TypeOf(time.Time{})
	jsonNumberType    = reflect.TypeOf(json.Number(""))
	jsonMarshalerType = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	textMarshalerType = reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem()
	appenderType      = reflect.TypeOf((*Appender)(nil)).Elem()
	ownEncodings      sync.Map // reflect.Type -> typeEncoding
)

// own says how the values of a type are written.
type own uint8

const (
	byKind    own = iota // no encoding of its own: by kind (a struct field by field)
	viaSwitch            // a type Encode's switch writes: json.Number, an Appender
	ownBigInt            // big.Int: an integer
	ownTime              // time.Time: refused, given to the hook
	ownJSON              // a json.Marshaler: the value its JSON text holds
	ownText              // an encoding.TextMarshaler: its text, as a string
)

// typeEncoding is how the values of a type are written: value for a value that is not
// addressable, addr for one that is (the methods of its pointer then apply as well).
type typeEncoding struct{ value, addr own }

// ownOf returns how v, of type t (neither a pointer nor an interface), is written. The last type
// looked up is kept: the elements of a slice of structs cost one comparison each.
func (e *Encoder) ownOf(v reflect.Value, t reflect.Type) own {
	if t != e.lastType {
		if cached, ok := ownEncodings.Load(t); ok {
			e.lastEncoding = cached.(typeEncoding)
		} else {
			e.lastEncoding = encodingOf(t)
			ownEncodings.Store(t, e.lastEncoding)
		}
		e.lastType = t
	}
	if v.CanAddr() {
		return e.lastEncoding.addr
	}
	return e.lastEncoding.value
}

func encodingOf(t reflect.Type) typeEncoding {
	switch {
	case t == bigIntType:
		return typeEncoding{ownBigInt, ownBigInt}
	case t == timeType:
		return typeEncoding{ownTime, ownTime}
	case t == jsonNumberType || t.Implements(appenderType):
		return typeEncoding{viaSwitch, viaSwitch}
	}
	return typeEncoding{marshalerOf(t), marshalerOf(reflect.PointerTo(t))}
}

// marshalerOf is encoding/json's choice among the methods of t: MarshalJSON, else MarshalText.
func marshalerOf(t reflect.Type) own {
	switch {
	case t.Implements(jsonMarshalerType):
		return ownJSON
	case t.Implements(textMarshalerType):
		return ownText
	}
	return byKind
}

// encodeOwn writes v, of a type with an encoding of its own.
func (e *Encoder) encodeOwn(v reflect.Value, own own, depth int) error {
	t := v.Type()
	if own == ownTime {
		// The timestamp is an ext type, outside the mapping (as on decode).
		return e.refuse(v, depth, &EncodeError{Kind: Unsupported, Type: t})
	}
	if !v.CanInterface() { // reached through an unexported field: its methods cannot be called
		return e.encodeKind(v, depth)
	}
	if own == ownBigInt {
		b := v.Interface().(big.Int)
		return e.writeBig(&b)
	}
	receiver := v
	if v.CanAddr() { // the method may be the pointer's; the value's are the pointer's too
		receiver = v.Addr()
	}
	if own == ownJSON {
		m := receiver.Interface().(json.Marshaler)
		text, err := callMarshaler(t, "MarshalJSON", m.MarshalJSON)
		if err != nil {
			return err
		}
		value, problem := jsonValue(text)
		if problem != "" {
			return invalid(t.String(), ": MarshalJSON returned "+problem)
		}
		return e.Encode(value, depth)
	}
	m := receiver.Interface().(encoding.TextMarshaler)
	text, err := callMarshaler(t, "MarshalText", m.MarshalText)
	if err != nil {
		return err
	}
	return e.writeString(string(text))
}

// callMarshaler calls method, named name, of a value of type t. Its error fails the encoding (the
// error wrapped), and so does its panic: a method of the application's, run by the codec, never
// takes the process down.
func callMarshaler(t reflect.Type, name string, method func() ([]byte, error)) (text []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			cause, _ := p.(error)
			text, err = nil, &EncodeError{Kind: Invalid, Subject: t.String(), Predicate: fmt.Sprintf(": %s panicked: %v", name, p), Err: cause}
		}
	}()
	text, err = method()
	if err != nil {
		return nil, &EncodeError{Kind: Invalid, Subject: t.String(), Predicate: ": " + name + " failed: " + err.Error(), Err: err}
	}
	return text, nil
}

// jsonValue returns the generic value of the JSON text a MarshalJSON returned, its numbers as
// json.Number (which Encode writes as an integer or a float, as the text says), as the JSON codec
// decodes it; or what is wrong with it for the protocol (PROTOCOL.md 3.1, 3.4), which
// encoding/json would let through or change (invalid UTF-8, a lone surrogate).
func jsonValue(text []byte) (any, string) {
	switch string(text) { // the commonest answers, without a decoder
	case "null":
		return nil, ""
	case "true":
		return true, ""
	case "false":
		return false, ""
	}
	if len(bytes.TrimLeft(text, " \t\r\n")) == 0 {
		return nil, "no JSON text"
	}
	if !utf8.Valid(text) {
		return nil, "text that is not valid UTF-8"
	}
	d := json.NewDecoder(bytes.NewReader(text))
	d.UseNumber()
	var value any
	if err := d.Decode(&value); err != nil {
		return nil, "invalid JSON (" + strings.TrimPrefix(err.Error(), "json: ") + ")"
	}
	if len(bytes.TrimLeft(text[d.InputOffset():], " \t\r\n")) > 0 {
		return nil, "invalid JSON (data after the value)"
	}
	if problem := jsontext.Scan(text, MaxNestingDepth); problem != "" {
		return nil, "JSON the protocol refuses: " + problem
	}
	return value, ""
}
