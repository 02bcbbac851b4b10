package aspectipc

// Codec turns values into payload bytes and back. It is pure: no I/O. Two codecs ship with the
// SDK: JSONCodec (control channel) and MessagePackCodec (data channel); both map Go values to the
// protocol's data model (PROTOCOL.md section 3) and fail with a *CodecError on anything outside it.
//
// Generic values decode to: nil, bool, int64 (uint64 for integers above math.MaxInt64), float64,
// string, []byte (MessagePack only), []any and map[string]any. Params.Decode and Result.Decode
// then store such a value into the caller's own type with the same rules whatever the codec.
type Codec interface {
	// Name is a short name for error messages: "json", "msgpack".
	Name() string
	// Encode returns the payload for value. It fails, producing nothing, when value (or anything
	// inside it) has no form in the codec.
	Encode(value any) ([]byte, error)
	// Decode returns the generic value held by one complete payload.
	Decode(payload []byte) (any, error)
}
