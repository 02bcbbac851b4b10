package aspectipc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/msgpack"
)

// jsonWriter writes compact JSON. It writes the generic values itself, so that floats stay floats
// (encoding/json writes 1.0 as 1 and -0.0 as -0, which read back as integers), and hands other
// types to encoding/json after checkJSONValue.
type jsonWriter struct {
	buf       []byte
	delegated bool // part of buf was written by encoding/json
	// hook is JSONCodec.EncodeHook; hookDepth counts its applications around the value written.
	hook      func(any) (any, error)
	hookDepth int
}

func jsonDepthError() error {
	return &CodecError{Codec: "json", Message: fmt.Sprintf("cannot encode value: nested deeper than %d levels (a cycle?)", maxNestingDepth)}
}

// write appends v; depth is the number of containers around it.
func (w *jsonWriter) write(v any, depth int) error {
	switch x := v.(type) {
	case nil:
		w.buf = append(w.buf, "null"...)
	case bool:
		w.buf = strconv.AppendBool(w.buf, x)
	case string:
		return w.writeString(x)
	case int:
		w.buf = strconv.AppendInt(w.buf, int64(x), 10)
	case int64:
		w.buf = strconv.AppendInt(w.buf, x, 10)
	case int32:
		w.buf = strconv.AppendInt(w.buf, int64(x), 10)
	case uint64:
		w.buf = strconv.AppendUint(w.buf, x, 10)
	case uint32:
		w.buf = strconv.AppendUint(w.buf, uint64(x), 10)
	case float64:
		return w.writeFloat(x)
	case json.Number:
		if _, err := jsonNumber(string(x)); err != nil {
			return err
		}
		w.buf = append(w.buf, x...)
	case []any:
		if depth >= maxNestingDepth {
			return jsonDepthError()
		}
		w.buf = append(w.buf, '[')
		for i, item := range x {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			if err := w.write(item, depth+1); err != nil {
				return jsonAt(err, "", i)
			}
		}
		w.buf = append(w.buf, ']')
	case map[string]any:
		if depth >= maxNestingDepth {
			return jsonDepthError()
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		w.buf = append(w.buf, '{')
		for i, k := range keys {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			if err := w.writeString(k); err != nil {
				return err
			}
			w.buf = append(w.buf, ':')
			if err := w.write(x[k], depth+1); err != nil {
				return jsonAt(err, k, -1)
			}
		}
		w.buf = append(w.buf, '}')
	case Params:
		return w.write(x.Value(), depth)
	case Result:
		return w.write(x.value, depth)
	default:
		if t := reflect.TypeOf(v); jsonRefuses(t) {
			if w.hook != nil {
				return w.applyHook(v, depth)
			}
			if k := t.Kind(); k != reflect.Slice && k != reflect.Map { // those have messages of their own
				return &msgpack.EncodeError{Kind: msgpack.Unsupported, Type: t}
			}
		}
		err := w.writeOther(v, depth)
		if err != nil && (w.hook != nil || err == errWriteTyped) { // the hook may make what encoding/json refuses
			return w.writeTyped(reflect.ValueOf(v), depth, 0)
		}
		return err
	}
	return nil
}

// writeOther hands v to encoding/json, after checking what it would let through.
func (w *jsonWriter) writeOther(v any, depth int) error {
	if err := checkJSONValue(reflect.ValueOf(v), depth, 0); err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := encodeRecovering(enc, v); err != nil {
		failure := JSONCodec{}.wrap("cannot encode value", err)
		var me *json.MarshalerError
		if ce, ok := failure.(*CodecError); ok && ce.cause == nil && errors.As(err, &me) {
			ce.cause = me.Unwrap() // the error of a MarshalJSON or MarshalText method
		}
		return failure
	}
	out := buf.Bytes()
	w.buf = append(w.buf, out[:len(out)-1]...) // json.Encoder ends every value with '\n'
	w.delegated = true
	return nil
}

// encodeRecovering has enc encode v. A MarshalJSON or MarshalText method that panics (encoding/json
// lets the panic through) fails the encoding, as in the MessagePack codec: the application's
// method, run by the codec, never takes the process down.
func encodeRecovering(enc *json.Encoder, v any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			cause, _ := p.(error)
			err = &CodecError{Codec: "json", Message: fmt.Sprintf("cannot encode %T: a MarshalJSON or MarshalText method panicked: %v", v, p), cause: cause}
		}
	}()
	return enc.Encode(v)
}

// writeFloat writes f so that it reads back as a float: with a '.' or an exponent.
func (w *jsonWriter) writeFloat(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nonFiniteError(f)
	}
	// encoding/json's choice of format, so that the digits are the same as before.
	format, abs := byte('f'), math.Abs(f)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(w.buf)
	w.buf = strconv.AppendFloat(w.buf, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9, like encoding/json.
		if n := len(w.buf); n-start >= 4 && w.buf[n-4] == 'e' && w.buf[n-3] == '-' && w.buf[n-2] == '0' {
			w.buf[n-2] = w.buf[n-1]
			w.buf = w.buf[:n-1]
		}
	} else if bytes.IndexByte(w.buf[start:], '.') < 0 {
		w.buf = append(w.buf, ".0"...)
	}
	return nil
}

func nonFiniteError(f float64) error {
	return &CodecError{Codec: "json", Message: fmt.Sprintf("%v has no JSON form: send it on the data channel (MessagePack) or as a string", f)}
}

func invalidStringError(s string) error {
	return &CodecError{Codec: "json", Message: fmt.Sprintf("string %q is not valid UTF-8 (or holds a lone surrogate): send bytes as []byte on the data channel", truncateForError(s))}
}

// writeString writes s quoted, escaping what JSON requires and U+2028/U+2029 (as encoding/json
// does, for JavaScript). A string that is not valid UTF-8 (Go's check also refuses encoded
// surrogates) is a codec error, never replaced by U+FFFD.
func (w *jsonWriter) writeString(s string) error {
	if !utf8.ValidString(s) {
		return invalidStringError(s)
	}
	const hexDigits = "0123456789abcdef"
	w.buf = append(w.buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != '\u2028' && r != '\u2029' {
				i += size
				continue
			}
			w.buf = append(w.buf, s[start:i]...)
			w.buf = append(w.buf, `\u202`...)
			w.buf = append(w.buf, hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		w.buf = append(w.buf, s[start:i]...)
		switch c {
		case '"', '\\':
			w.buf = append(w.buf, '\\', c)
		case '\n':
			w.buf = append(w.buf, '\\', 'n')
		case '\r':
			w.buf = append(w.buf, '\\', 'r')
		case '\t':
			w.buf = append(w.buf, '\\', 't')
		default:
			w.buf = append(w.buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	w.buf = append(w.buf, s[start:]...)
	w.buf = append(w.buf, '"')
	return nil
}
