package aspectipc

import (
	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/assign"
	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/msgpack"
	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/outframe"
)

// maxNestingDepth is the deepest nesting of containers (arrays and maps) both codecs accept and
// write, on both channels (PROTOCOL.md 3.2): the message map itself is depth 1, its params depth 2.
// Deeper is a codec error, on decode as on encode, rather than a stack overflow.
const maxNestingDepth = msgpack.MaxNestingDepth

// MessagePackCodec is the data channel's codec, with the protocol's mapping (PROTOCOL.md 3.2):
// integers in their shortest format, floats as float 64, []byte as bin, maps with string keys.
// Decoding is strict: ext types (the timestamp too), non-string map keys, invalid UTF-8, trailing
// bytes and truncated objects are codec errors, and declared lengths are checked against the bytes
// present before anything is allocated.
//
// The zero value is ready to use. Set EncodeHook and DecodeHook to carry your own types (see
// "Codec hooks" in the README), and give the codec to a channel with WithCodec, or to Serve with
// Config.DataCodec.
type MessagePackCodec struct {
	// EncodeHook, when set, is called with each value the mapping has no form for (time.Time, a
	// chan or func, a complex number, a map with non-string keys) and returns the value to write
	// instead, which is then encoded as usual: it may itself hold values that need the hook, up to
	// 64 applications deep. An error it returns, or a panic, fails the encoding with a *CodecError
	// naming the place of the value. Like the default function of Python's json.dumps.
	EncodeHook func(value any) (any, error)
	// DecodeHook, when set, is called with every decoded map, innermost first (the message
	// envelope last: return a map you do not recognise unchanged), and its result replaces the
	// map. An error it returns, or a panic, fails the decoding with a *CodecError. Like
	// object_hook of Python's json.loads.
	DecodeHook func(m map[string]any) (any, error)
	// DecodeHookKeys, when set, are the keys by which DecodeHook recognises its maps (the
	// "__ndarray__" of the numpy recipe): it is then given only the maps holding one of them,
	// the others being left as they are without a call. This also lets the params of a request
	// that hold no such map reach the handler undecoded, so that Params.Decode fills its type
	// straight from the bytes (without it, a codec with a hook decodes every params whole).
	DecodeHookKeys []string
}

// Name returns "msgpack".
func (MessagePackCodec) Name() string { return "msgpack" }

// Encode returns the MessagePack encoding of value. Structs are encoded as maps keyed by their
// `json` tags (field name when untagged, omitempty honoured, embedded structs promoted), like
// encoding/json does, and the types with an encoding of their own are written as JSONCodec writes
// them, so that a value arrives as the same value on either channel: a json.Marshaler as the
// value its JSON text holds (json.RawMessage too), else an encoding.TextMarshaler as its text, by
// encoding/json's rules (MarshalJSON first; a pointer receiver's method for a pointer or an
// addressable value only). time.Time is refused, for the EncodeHook. A value outside the mapping
// is a *CodecError whose Path names its place.
func (c MessagePackCodec) Encode(value any) ([]byte, error) {
	if r, ok := value.(wireResponse); ok && c.EncodeHook != nil {
		value = JSONRPCProtocol{}.Response(r.id, r.result) // its own writer has no hook
	}
	e := msgpack.Encoder{Hook: c.EncodeHook}
	if err := e.Encode(value, 0); err != nil {
		return nil, mpEncodeError(err)
	}
	return e.Buf, nil
}

// encodeInto appends the encoding of value to f, splicing large binaries in rather than copying
// them; the bytes are those Encode returns.
func (c MessagePackCodec) encodeInto(f *outframe.Frame, value any) error {
	var err error
	if r, ok := value.(wireResponse); ok && c.EncodeHook == nil { // every response: a direct call, no type switch
		if f.Buf, err = r.AppendMsgpack(f.Buf, &f.Refs, 0); err != nil {
			err = msgpack.AtKey(err, "result")
		}
	} else {
		if ok { // the same map, written by an Encoder that has the hook
			value = JSONRPCProtocol{}.Response(r.id, r.result)
		}
		e := msgpack.Encoder{Buf: f.Buf, Refs: &f.Refs, Hook: c.EncodeHook}
		err = e.Encode(value, 0)
		f.Buf = e.Buf
	}
	if err != nil {
		return mpEncodeError(err)
	}
	return nil
}

// Decode returns the generic value of one MessagePack object filling payload exactly, each map
// passed through DecodeHook when it is set.
func (c MessagePackCodec) Decode(payload []byte) (any, error) {
	v, err := msgpack.DecodeHooked(payload, c.DecodeHook, c.DecodeHookKeys)
	if err != nil {
		return nil, mpDecodeError(err)
	}
	return v, nil
}

// lazyDepth is the depth of a message's params: inside the message map.
const lazyDepth = 1

// decodeMessage decodes a payload with codec. The SDK's MessagePack codec without a decode hook
// (or with DecodeHookKeys, when the params hold no map with one of them) leaves the top-level
// "params" member checked but not decoded, a *msgpack.Lazy (Classify puts it in Message.lazy):
// accepted and refused exactly as Decode accepts and refuses it, with the same error, so that
// the answer to a malformed message does not change. Whether a "$/stream" member is present is
// noted, for the stream descriptor must be read from the generic value.
func decodeMessage(codec Codec, payload []byte) (any, error) {
	mp, ok := codec.(MessagePackCodec)
	if !ok || mp.DecodeHook != nil && len(mp.DecodeHookKeys) == 0 { // the hook sees every map, the params' too
		return codec.Decode(payload)
	}
	v, err := msgpack.DecodeLazyHooked(payload, "params", streamMember, mp.DecodeHook, mp.DecodeHookKeys)
	if err != nil {
		return nil, mpDecodeError(err)
	}
	return v, nil
}

func mpDecodeError(err error) error {
	if e, ok := err.(*msgpack.Error); ok && e.Structural {
		return &CodecError{Codec: "msgpack", Message: "frame is not valid MessagePack (" + e.Msg + "): do both sides use MessagePackCodec?"}
	}
	// A mapping error (ext type, non-string key, invalid UTF-8, depth) or the decode hook's: the
	// request's id may be recovered from the top-level map (PROTOCOL.md 4.8).
	ce := &CodecError{Codec: "msgpack", Message: err.Error(), recoverable: true}
	if he, ok := err.(*msgpack.HookError); ok {
		ce.Path, ce.cause = he.Path(), he.Err
	}
	return ce
}

// recoverEnvelope implements envelopeRecoverer (PROTOCOL.md 4.8): for a payload that is one
// readable MessagePack map at the top level, it returns its "id" (a string or an integer),
// whether its "method" is a string, and which of "method", "result" and "error" it has, whatever
// made the decoding fail elsewhere.
func (MessagePackCodec) recoverEnvelope(payload []byte) (envelope, bool) {
	m, ok := msgpack.TopLevelMembers(payload)
	if !ok {
		return envelope{}, false
	}
	env := envelope{methodOK: m.MethodIsString, hasMethod: m.HasMethod, hasAnswer: m.HasAnswer}
	env.id, env.idOK = idOf(m.ID)
	return env, true
}

// Unmarshal decodes one MessagePack object into target, a pointer to your own type (struct fields
// matched by their `json` tags, as with encoding/json); an integer is accepted where a float is
// expected.
func (c MessagePackCodec) Unmarshal(payload []byte, target any) error {
	generic, err := c.Decode(payload)
	if err != nil {
		return err
	}
	if err := assign.Into(target, generic, assignOptions(false)); err != nil {
		return &CodecError{Codec: "msgpack", Message: err.Error()}
	}
	return nil
}

// assignOptions are the options of every assign.Into of the SDK.
func assignOptions(shareBinary bool) assign.Options {
	return assign.Options{ShareBinary: shareBinary, EncodeJSON: encodeJSON}
}

// encodeJSON is made once: a method value made on every call would be allocated on every call.
var encodeJSON = JSONCodec{}.Encode
