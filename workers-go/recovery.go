package aspectipc

// Recovery from a message that does not decode (PROTOCOL.md 4.8). When the bytes are well-formed
// and only a value broke the rules of section 3, the top level still says what the message was:
// a request, whose -32700 answer then carries its id, or an answer to one of our requests, which
// then fails that request at once instead of leaving its caller to time out.

// envelope is what the top level of a well-formed but undecodable message says about it.
type envelope struct {
	id        ID
	idOK      bool // "id" is a valid string or integer
	methodOK  bool // "method" is a valid string
	hasMethod bool // a "method" member is present, whatever its value
	hasAnswer bool // a "result" or an "error" member is present (its value is never read)
}

// requestID is the id of a request, which its -32700 answer carries; null when it is not one.
func (e envelope) requestID() ID {
	if e.idOK && e.methodOK {
		return e.id
	}
	return ID{}
}

// answerID is the id of an answer, whose pending request fails; ok is false when it is not one.
func (e envelope) answerID() (id ID, ok bool) {
	if e.idOK && !e.hasMethod && e.hasAnswer {
		return e.id, true
	}
	return ID{}, false
}

// envelopeRecoverer is a Codec that can read the top level of a message it failed to decode for a
// reason other than broken syntax.
type envelopeRecoverer interface {
	recoverEnvelope(payload []byte) (envelope, bool)
}

// recoverEnvelopeOf returns the top level of a payload that failed to decode with err; ok is
// false when there is nothing to recover (broken syntax, not a map, a codec that cannot say).
func recoverEnvelopeOf(codec Codec, payload []byte, err error) (envelope, bool) {
	ce, ok := err.(*CodecError)
	r, can := codec.(envelopeRecoverer)
	if !ok || !ce.recoverable || !can {
		return envelope{}, false
	}
	return r.recoverEnvelope(payload)
}

// parseErrorID returns the id for the -32700 answer to a payload that failed to decode with err.
func parseErrorID(codec Codec, payload []byte, err error) ID {
	env, _ := recoverEnvelopeOf(codec, payload, err)
	return env.requestID()
}
