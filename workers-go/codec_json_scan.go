package aspectipc

import (
	"encoding/json"
	"fmt"
)

// What encoding/json lets through and the protocol refuses (PROTOCOL.md 3.1): it replaces an
// escaped lone surrogate ("\ud800") by U+FFFD and accepts nesting up to 10000 levels. scanJSONText
// finds both in one pass over the text, for the decoder (which then fails) and for the encoder
// (whose output may hold what a json.Marshaler wrote).

// scanJSONText returns what is wrong with syntactically valid JSON text, or "" if nothing is:
// nesting deeper than maxNestingDepth containers, or a \u escape of a surrogate that is not half of
// a high+low pair.
func scanJSONText(b []byte) string {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '[', '{':
			depth++
			if depth > maxNestingDepth {
				return fmt.Sprintf("nesting deeper than %d levels", maxNestingDepth)
			}
		case ']', '}':
			depth--
		case '"':
			end, problem := scanJSONString(b, i+1)
			if problem != "" {
				return problem
			}
			i = end
		}
	}
	return ""
}

// scanJSONString scans the string whose content starts at b[i] and returns the index of its
// closing quote, or what is wrong with it.
func scanJSONString(b []byte, i int) (int, string) {
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			return i, ""
		case '\\':
			i++
			if i >= len(b) || b[i] != 'u' {
				continue
			}
			u := hex4(b, i+1)
			switch {
			case u >= 0xd800 && u <= 0xdbff:
				if i+10 < len(b) && b[i+5] == '\\' && b[i+6] == 'u' {
					if low := hex4(b, i+7); low >= 0xdc00 && low <= 0xdfff {
						i += 10 // the pair
						continue
					}
				}
				return i, fmt.Sprintf(`lone surrogate \u%04x in a string: strings are sequences of Unicode scalar values`, u)
			case u >= 0xdc00 && u <= 0xdfff:
				return i, fmt.Sprintf(`lone surrogate \u%04x in a string: strings are sequences of Unicode scalar values`, u)
			}
			i += 4
		}
	}
	return i, ""
}

// hex4 reads the 4 hex digits at b[i:], or returns -1.
func hex4(b []byte, i int) int {
	if i+4 > len(b) {
		return -1
	}
	v := 0
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | int(c-'A'+10)
		default:
			return -1
		}
	}
	return v
}

// recoverEnvelope implements envelopeRecoverer (PROTOCOL.md 4.8): for valid JSON text whose top
// level is an object, it returns its "id" (a string or an integer), whether its "method" is a
// string, and which of "method", "result" and "error" it has. The members are read one by one
// from the text, so what made the decoding fail elsewhere (a lone surrogate, an integer out of
// range, nesting of any depth in params or result) does not hide them; the values of "result"
// and "error" are never decoded. A repeated member counts for its last value, as in the decoder.
func (JSONCodec) recoverEnvelope(payload []byte) (envelope, bool) {
	if !validJSON(payload) {
		return envelope{}, false
	}
	i := skipJSONSpace(payload, 0)
	if payload[i] != '{' {
		return envelope{}, false
	}
	var env envelope
	for i = skipJSONSpace(payload, i+1); payload[i] == '"'; {
		keyEnd := jsonStringEnd(payload, i)
		var key string
		_ = json.Unmarshal(payload[i:keyEnd], &key)
		start := jsonMemberValue(payload, i)
		end := jsonValueEnd(payload, start)
		switch key {
		case "id":
			env.id, env.idOK = jsonRawID(payload[start:end])
		case "method":
			env.hasMethod = true
			env.methodOK = payload[start] == '"' && scanJSONText(payload[start:end]) == ""
		case "result", "error":
			env.hasAnswer = true
		}
		if i = skipJSONSpace(payload, end); payload[i] == ',' {
			i = skipJSONSpace(payload, i+1)
		}
	}
	return env, true
}

// jsonRawID returns the id a raw JSON value holds: a string without lone surrogates, or an
// integer token in [-2^63, 2^64-1] (a token with '.' or an exponent is a float, never an id).
func jsonRawID(raw json.RawMessage) (ID, bool) {
	if len(raw) == 0 {
		return ID{}, false
	}
	if raw[0] == '"' {
		var s string
		if scanJSONText(raw) != "" || json.Unmarshal(raw, &s) != nil {
			return ID{}, false
		}
		return StringID(s), true
	}
	if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return ID{}, false
	}
	n, err := jsonNumber(string(raw))
	if err != nil {
		return ID{}, false
	}
	return integerOf(n)
}
