package aspectipc

// MessagePackCodec is the data channel's codec, with the protocol's mapping (PROTOCOL.md 3.2):
// integers in their shortest format, floats as float 64, []byte as bin, maps with string keys.
// Decoding is strict: ext types (the timestamp too), non-string map keys, invalid UTF-8, trailing
// bytes and truncated objects are codec errors, and declared lengths are checked against the bytes
// present before anything is allocated.
type MessagePackCodec struct{}

// Name returns "msgpack".
func (MessagePackCodec) Name() string { return "msgpack" }

// Encode returns the MessagePack encoding of value. Structs are encoded as maps keyed by their
// `json` tags (field name when untagged), like encoding/json does.
func (MessagePackCodec) Encode(value any) ([]byte, error) {
	e := mpEncoder{}
	if err := e.encode(value, 0); err != nil {
		return nil, mpEncodeError(err)
	}
	return e.buf, nil
}

// encodeInto appends the encoding of value to f, splicing large binaries in rather than copying
// them; the bytes are those Encode returns.
func (MessagePackCodec) encodeInto(f *outFrame, value any) error {
	e := mpEncoder{buf: f.buf, refs: &f.refs}
	err := e.encode(value, 0)
	f.buf = e.buf
	if err != nil {
		return mpEncodeError(err)
	}
	return nil
}

func mpEncodeError(err error) error {
	if ce, ok := err.(*CodecError); ok {
		return ce
	}
	return &CodecError{Codec: "msgpack", Message: err.Error()}
}

// Decode returns the generic value of one MessagePack object filling payload exactly.
func (MessagePackCodec) Decode(payload []byte) (any, error) {
	d := mpDecoder{data: payload}
	return d.decodeAll()
}

// Unmarshal decodes one MessagePack object into target, a pointer to your own type (struct fields
// matched by their `json` tags, as with encoding/json); an integer is accepted where a float is
// expected.
func (c MessagePackCodec) Unmarshal(payload []byte, target any) error {
	generic, err := c.Decode(payload)
	if err != nil {
		return err
	}
	if err := assign(target, generic); err != nil {
		return &CodecError{Codec: "msgpack", Message: err.Error()}
	}
	return nil
}
