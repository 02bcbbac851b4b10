package aspectipc

import (
	"encoding/json"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/assign"
	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/msgpack"
	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/outframe"
)

// Params holds the params of an incoming request or notification. Decode them into your own type
// with Decode, or take the generic value with Value.
type Params struct {
	value   any
	present bool
	// lazy, when set, holds the params as they arrived on the data channel, checked but not
	// decoded: Decode fills the caller's type straight from the bytes, and the generic value is
	// built only if Value is called (or Decode has to fall back to it).
	lazy *msgpack.Lazy
}

// Decode stores the params into target, a pointer to your own type (a struct with `json` tags, a
// map, a slice, or *any for the generic value), with the same rules whichever codec the channel
// uses: encoding/json's, plus integers accepted where floats are expected and binary into []byte
// (a []byte receives the binary as it was received, without a copy: it is the handler's).
// When the message has no params, target is left untouched. On failure it returns an *Error with
// CodeInvalidParams that names the offending field, so a handler can return it as is.
func (p Params) Decode(target any) error {
	if !p.present {
		return nil
	}
	// Straight from the bytes when the direct decoder gives what assigning the generic value
	// gives; otherwise (and for every error, whose text assign writes) through the generic value.
	if p.lazy != nil && !p.lazy.FoldDups && msgpack.DecodeInto(p.lazy.Raw, lazyDepth, target) {
		return nil
	}
	if err := assign.Into(target, p.Value(), assignOptions(true)); err != nil {
		return &Error{Code: CodeInvalidParams, Message: "Invalid params: " + err.Error(), cause: err}
	}
	return nil
}

// Value returns the generic value of the params: []any or map[string]any, or nil when absent.
// Params that arrived on the data channel are decoded into it on the first call, once, whichever
// goroutines call it.
func (p Params) Value() any {
	if p.lazy != nil {
		return p.lazy.Value()
	}
	return p.value
}

// Present reports whether the message had a params member.
func (p Params) Present() bool { return p.present }

// MarshalJSON encodes the generic value, so that Params can be forwarded as a value.
func (p Params) MarshalJSON() ([]byte, error) { return marshalGeneric(p.Value()) }

// AppendMsgpack writes the generic value, so that Params can be forwarded as a value.
func (p Params) AppendMsgpack(buf []byte, refs *[]outframe.Ref, depth int) ([]byte, error) {
	return appendGeneric(buf, refs, p.Value(), depth)
}

// Result holds the result of a request made to the peer. Decode it into your own type with
// Decode, or take the generic value with Value.
type Result struct{ value any }

// Decode stores the result into target, a pointer to your own type, with the rules of
// Params.Decode. It fails with a *CodecError when the result does not fit target.
func (r Result) Decode(target any) error {
	if err := assign.Into(target, r.value, assignOptions(true)); err != nil {
		return &CodecError{Codec: "result", Message: err.Error()}
	}
	return nil
}

// Value returns the generic value of the result (nil for a null result).
func (r Result) Value() any { return r.value }

// MarshalJSON encodes the generic value, so that a Result can be forwarded as a value.
func (r Result) MarshalJSON() ([]byte, error) { return marshalGeneric(r.value) }

// AppendMsgpack writes the generic value, so that a Result can be forwarded as a value.
func (r Result) AppendMsgpack(buf []byte, refs *[]outframe.Ref, depth int) ([]byte, error) {
	return appendGeneric(buf, refs, r.value, depth)
}

func appendGeneric(buf []byte, refs *[]outframe.Ref, v any, depth int) ([]byte, error) {
	e := msgpack.Encoder{Buf: buf, Refs: refs}
	err := e.Encode(v, depth)
	return e.Buf, err
}

func marshalGeneric(v any) ([]byte, error) {
	out, err := JSONCodec{}.Encode(v)
	if err != nil {
		return nil, err
	}
	return json.RawMessage(out), nil
}
