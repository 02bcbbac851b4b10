package aspectipc

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/assign"
	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/jsontext"
)

// JSONCodec is the control channel's codec: compact UTF-8 JSON (RFC 8259). It keeps integers
// integers (int64/uint64) and floats floats, both ways: a float64 is written with a '.' or an
// exponent (1.0 as 1.0, -0.0 as -0.0), and a number token with one decodes to a float64. It writes
// <, > and & unescaped, and refuses what JSON cannot carry: NaN, ±Infinity, binary ([]byte),
// invalid UTF-8, lone surrogates, integers outside [-2^63, 2^64-1], maps whose keys are not
// strings and nesting deeper than 512 are codec errors, never silently converted (encoding/json
// alone would base64 a []byte, replace a lone surrogate by U+FFFD and write the integer keys of a
// map[int]T as text).
//
// The zero value is ready to use. EncodeHook and DecodeHook work as MessagePackCodec's, with
// what JSON cannot carry: see "Codec hooks" in the README.
type JSONCodec struct {
	// EncodeHook, when set, is called with each value whose type JSON has no form for: []byte
	// and other binary, a chan or func, a complex number, a map whose keys are not strings (as
	// with MessagePackCodec: integer and TextMarshaler keys too); a time.Time has a form,
	// encoding/json's RFC 3339 text, as have the types with their own MarshalJSON. It returns
	// the value to write instead, encoded as usual (up to 64 applications deep); inside a struct
	// too, whose fields are then written by the codec in encoding/json's way. An error it
	// returns, or a panic, fails the encoding with a *CodecError naming the place of the value.
	EncodeHook func(value any) (any, error)
	// DecodeHook, when set, is called with every decoded JSON object, innermost first (the
	// message envelope last: return a map you do not recognise unchanged), and its result
	// replaces the map. An error it returns, or a panic, fails the decoding with a *CodecError.
	DecodeHook func(m map[string]any) (any, error)
	// DecodeHookKeys, when set, are the keys by which DecodeHook recognises its objects: it is
	// then given only the objects holding one of them, as MessagePackCodec's.
	DecodeHookKeys []string
}

// Name returns "json".
func (JSONCodec) Name() string { return "json" }

// Encode returns the compact JSON text for value. Generic values (maps, slices, numbers, strings)
// are written by the codec itself; other types (structs...) by encoding/json, after the same
// checks, so a float64 struct field holding 1.0 is written 1 (receivers accept an integer where
// a float is expected, PROTOCOL.md 3.2).
func (c JSONCodec) Encode(value any) ([]byte, error) {
	w := jsonWriter{hook: c.EncodeHook}
	if err := w.write(value, 0); err != nil {
		return nil, jsonEncodeError(err)
	}
	if w.delegated {
		// What a json.Marshaler or a struct wrote has not been checked for depth and escapes.
		if problem := jsontext.Scan(w.buf, maxNestingDepth); problem != "" {
			return nil, &CodecError{Codec: "json", Message: "cannot encode value: " + problem}
		}
		if !utf8.Valid(w.buf) { // only a MarshalJSON can have written it: strings are checked
			return nil, &CodecError{Codec: "json", Message: "cannot encode value: a MarshalJSON method returned text that is not valid UTF-8"}
		}
		if err := checkJSONNumbers(w.buf); err != nil { // so can a number beyond the protocol's
			return nil, jsonEncodeError(err)
		}
	}
	return w.buf, nil
}

// Decode returns the generic value of one JSON text. Invalid UTF-8, invalid JSON, trailing data,
// lone surrogates, nesting deeper than 512 and integers outside [-2^63, 2^64-1] are codec errors.
func (c JSONCodec) Decode(payload []byte) (any, error) {
	if !utf8.Valid(payload) {
		return nil, &CodecError{Codec: "json", Message: "text is not valid UTF-8"}
	}
	// What encoding/json lets through (lone surrogates) or reports as a syntax error (nesting
	// beyond 10000) is looked for first. In valid JSON text it is a failure of the content, and
	// the id of a request can still be recovered (PROTOCOL.md 4.8).
	problem := jsontext.Scan(payload, maxNestingDepth)
	if problem != "" && validJSON(payload) {
		return nil, &CodecError{Codec: "json", Message: problem, recoverable: true}
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var value any
	if err := dec.Decode(&value); err != nil {
		return nil, c.wrap("invalid JSON", err)
	}
	if rest := payload[dec.InputOffset():]; len(bytes.TrimLeft(rest, " \t\r\n")) > 0 || problem != "" {
		return nil, &CodecError{Codec: "json", Message: "invalid JSON: trailing data after the value"}
	}
	v, err := convertJSONNumbers(value)
	if err != nil {
		err.(*CodecError).recoverable = true
		return nil, err
	}
	if c.DecodeHook != nil {
		return applyDecodeHook(v, c.DecodeHook, c.DecodeHookKeys)
	}
	return v, nil
}

// Unmarshal decodes one JSON text into target, a pointer to your own type, with the same rules as
// MessagePackCodec.Unmarshal (encoding/json's, plus integers accepted where floats are expected).
func (c JSONCodec) Unmarshal(payload []byte, target any) error {
	generic, err := c.Decode(payload)
	if err != nil {
		return err
	}
	if err := assign.Into(target, generic, assignOptions(false)); err != nil {
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

// jsonNumber converts a number token: without '.' and exponent it is an integer, which must lie
// in [-2^63, 2^64-1]; with one it is a float64.
func jsonNumber(s string) (any, error) {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return u, nil
		}
		return nil, &CodecError{Codec: "json", Message: "integer " + truncateForError(s) + " is outside [-2^63, 2^64-1]"}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, &CodecError{Codec: "json", Message: "number " + truncateForError(s) + " does not fit a 64-bit float"}
	}
	return f, nil
}

func truncateForError(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
