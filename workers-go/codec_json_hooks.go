package aspectipc

import (
	"errors"
	"reflect"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/msgpack"
)

// JSONCodec's hooks, and the place of a failed value in its errors. The JSON writer reports its
// failures as *CodecError or *msgpack.EncodeError; jsonAt gathers the place on the way out of the
// failed encoding and jsonEncodeError states the result.

// jsonRefuses reports whether JSON has no form for values of type t, so that the encode hook is
// asked for a replacement: binary, chan, func, complex, unsafe.Pointer, maps whose keys are not
// strings (encoding/json would write integer and TextMarshaler keys as text, but the protocol has
// string keys only, as the MessagePack codec). A type with its own MarshalJSON or MarshalText
// decides for itself.
func jsonRefuses(t reflect.Type) bool {
	if t == nil || implementsMarshaler(t) {
		return false
	}
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.Uint8 && !implementsMarshaler(reflect.PointerTo(t.Elem()))
	case reflect.Map:
		return t.Key().Kind() != reflect.String
	}
	return false
}

// applyHook writes what the encode hook returns for v.
func (w *jsonWriter) applyHook(v any, depth int) error {
	t := reflect.TypeOf(v)
	if w.hookDepth >= msgpack.MaxHookDepth {
		return &msgpack.EncodeError{Kind: msgpack.HookLoop, Type: t}
	}
	replacement, err := msgpack.CallEncodeHook(w.hook, v) // a panic too is the hook's failure
	if err != nil {
		return err
	}
	w.hookDepth++
	err = w.write(replacement, depth)
	w.hookDepth--
	return err
}

// jsonAt adds the key (or the index i, when i >= 0) around which err happened to its place.
func jsonAt(err error, key string, i int) error {
	if err == errWriteTyped {
		return err
	}
	var ce *CodecError
	if errors.As(err, &ce) {
		// A check of the JSON writer: its message is kept, the place put in front.
		err = &msgpack.EncodeError{Kind: msgpack.Invalid, Subject: "value", Predicate: ": " + ce.Message, Err: ce.cause}
	}
	if i >= 0 {
		return msgpack.AtIndex(err, i)
	}
	return msgpack.AtKey(err, key)
}

// jsonEncodeError states the failure of JSONCodec.Encode.
func jsonEncodeError(err error) error {
	var ee *msgpack.EncodeError
	if errors.As(err, &ee) {
		return encodeErrorFor("json", ee)
	}
	var ce *CodecError
	if errors.As(err, &ce) && ce.Path == "" {
		ce.Path = "$"
	}
	return err
}

// applyDecodeHook passes every map of v, a decoded value, through hook, innermost first (only
// the maps holding one of keys, when there are keys).
func applyDecodeHook(v any, hook func(map[string]any) (any, error), keys []string) (any, error) {
	v, err := walkDecodeHook(v, hook, keys)
	var he *msgpack.HookError
	if errors.As(err, &he) {
		return nil, &CodecError{Codec: "json", Message: he.Error(), Path: he.Path(), recoverable: true, cause: he.Err}
	}
	return v, err
}

func walkDecodeHook(v any, hook msgpack.DecodeHook, keys []string) (any, error) {
	var err error
	switch x := v.(type) {
	case []any:
		for i, item := range x {
			if x[i], err = walkDecodeHook(item, hook, keys); err != nil {
				return nil, msgpack.HookErrorAt(err, i, "")
			}
		}
	case map[string]any:
		for k, item := range x {
			if x[k], err = walkDecodeHook(item, hook, keys); err != nil {
				return nil, msgpack.HookErrorAt(err, -1, k)
			}
		}
		if !hasAnyKey(x, keys) {
			return x, nil
		}
		return msgpack.CallHook(hook, x)
	}
	return v, nil
}

// hasAnyKey reports whether m holds one of keys; true when there are none (every map matches).
func hasAnyKey(m map[string]any, keys []string) bool {
	if len(keys) == 0 {
		return true
	}
	for _, k := range keys {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}
