package aspectipc

import (
	"bytes"
	"encoding/json"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/msgpack"
)

// The numbers a MarshalJSON writes. The JSON codec hands what it cannot write itself (structs,
// json.Marshalers) to encoding/json, which copies a MarshalJSON's text as it is: a number in it
// may be one the protocol has no form for (an integer outside [-2^63, 2^64-1], a float beyond
// float64, PROTOCOL.md 3.1), which the peer's decoder refuses. The MessagePack codec refuses such
// a number when sending (msgpack.JSONNumber); so does the JSON codec, with the same words and the
// number's place.

// checkJSONNumbers returns the error for the first number of text, valid JSON, that the protocol
// cannot carry; nil when there is none.
func checkJSONNumbers(text []byte) error {
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '"':
			i = jsonStringEnd(text, i) - 1
		case c == '-' || c >= '0' && c <= '9':
			end := jsonScalarEnd(text, i)
			// Up to 18 characters without an exponent, a number is within int64 or float64.
			if end-i > 18 || bytes.ContainsAny(text[i:end], "eE") {
				if _, err := msgpack.JSONNumber(string(text[i:end])); err != nil {
					return atJSONPlace(err, text, i)
				}
			}
			i = end - 1
		}
	}
	return nil
}

// atJSONPlace adds to err the place in text, valid JSON, of the value that starts at offset at.
func atJSONPlace(err error, text []byte, at int) error {
	type level struct {
		object bool
		key    string // the member being read, in an object
		index  int    // the element being read, in an array
	}
	var open []level
	wantKey := false
	for i := 0; i < at; i++ {
		switch text[i] {
		case '{':
			open = append(open, level{object: true})
			wantKey = true
		case '[':
			open = append(open, level{})
		case ']', '}':
			open = open[:len(open)-1]
		case ',':
			if top := &open[len(open)-1]; top.object {
				wantKey = true
			} else {
				top.index++
			}
		case '"':
			end := jsonStringEnd(text, i)
			if wantKey {
				_ = json.Unmarshal(text[i:end], &open[len(open)-1].key)
				wantKey = false
			}
			i = end - 1
		}
	}
	for i := len(open) - 1; i >= 0; i-- { // innermost first
		if open[i].object {
			err = msgpack.AtKey(err, open[i].key)
		} else {
			err = msgpack.AtIndex(err, open[i].index)
		}
	}
	return err
}
