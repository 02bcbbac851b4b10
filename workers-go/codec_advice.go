package aspectipc

import (
	"errors"
	"reflect"
	"time"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/msgpack"
)

// The encode errors of both codecs name the place of the value that failed and say what to do
// with it. The place is gathered on the way out of a failed encoding (internal/msgpack), so a
// successful encoding never computes it.

var timeType = reflect.TypeOf(time.Time{})

// mpEncodeError turns an encoding failure into the *CodecError Encode returns.
func mpEncodeError(err error) error {
	var ce *CodecError
	if errors.As(err, &ce) {
		return ce
	}
	var ee *msgpack.EncodeError
	if !errors.As(err, &ee) {
		return &CodecError{Codec: "msgpack", Message: err.Error()}
	}
	return encodeErrorFor("msgpack", ee)
}

// encodeErrorFor states ee for codec ("msgpack" or "json"), with advice.
func encodeErrorFor(codec string, ee *msgpack.EncodeError) *CodecError {
	ce := &CodecError{Codec: codec, Path: ee.Path(), cause: ee.Err}
	format, codecType := "MessagePack", "MessagePackCodec"
	if codec == "json" {
		format, codecType = "JSON", "JSONCodec"
	}
	hookAdvice := " or set EncodeHook on " + codecType
	switch ee.Kind {
	case msgpack.Unsupported:
		ce.Message = "cannot encode " + msgpack.TypeName(ee.Type) + " at " + msgpack.ShortPath(ce.Path) + " as " + format + ": " + conversionAdvice(ee.Type) + hookAdvice
	case msgpack.NonStringKey:
		ce.Message = ee.Error() + " (convert the map to one with string keys first," + hookAdvice + ")"
	case msgpack.IntegerRange:
		ce.Message = ee.Error() + ": send it as a string"
	default:
		ce.Message = ee.Error()
	}
	return ce
}

// conversionAdvice says what to convert a value of type t into before encoding it.
func conversionAdvice(t reflect.Type) string {
	if t == nil {
		return "convert it first (to a map, a slice, a string or a number)"
	}
	switch {
	case t == timeType:
		return "convert it first (a time.Time to a string with t.Format(time.RFC3339Nano), or a number such as t.UnixNano())"
	case t.Kind() == reflect.Chan || t.Kind() == reflect.Func || t.Kind() == reflect.UnsafePointer:
		return "channels, functions and unsafe pointers are not supported: leave them out (tag the field `json:\"-\"`)"
	case t.Kind() == reflect.Complex64 || t.Kind() == reflect.Complex128:
		return "convert it first (a complex number to a [real, imag] pair of floats)"
	}
	return "convert it first (to a map, a slice, a string or a number)"
}
