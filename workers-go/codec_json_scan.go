package aspectipc

import (
	"encoding/json"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/jsontext"
)

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
			env.methodOK = payload[start] == '"' && jsontext.Scan(payload[start:end], maxNestingDepth) == ""
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
		if jsontext.Scan(raw, maxNestingDepth) != "" || json.Unmarshal(raw, &s) != nil {
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
