// Package msgpack is the SDK's own MessagePack encoder and decoder, for the protocol's mapping
// (PROTOCOL.md 3.2). It is a pure codec: it knows nothing of JSON-RPC; a type that wants a
// particular encoding (the SDK's responses, Params, Result) implements Appender.
package msgpack

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// MaxNestingDepth is the deepest nesting of containers (arrays and maps) both codecs accept and
// write, on both channels (PROTOCOL.md 3.2): the message map itself is depth 1, its params depth 2.
// Deeper is a codec error, on decode as on encode, rather than a stack overflow.
const MaxNestingDepth = 512

// mpDecoder is a strict MessagePack reader for the protocol's mapping (PROTOCOL.md 3.2). It
// checks every declared length against the bytes actually present before allocating anything, so
// a forged header cannot make it allocate what it declares.
type decoder struct {
	data []byte
	pos  int
	hook DecodeHook
	// hookKeys, when not empty: the hook is given only the maps holding one of them.
	hookKeys []string
	keys     keyCache
	lazy     lazyState
}

// Error is a decoding failure. Structural ones (truncation, invalid bytes, trailing data) are what
// a peer using another codec produces; the others are values outside the mapping (an ext type, a
// non-string key, invalid UTF-8, nesting too deep) in well-formed bytes.
type Error struct {
	Msg        string
	Structural bool
}

// Error implements the error interface.
func (e *Error) Error() string { return e.Msg }

func structuralf(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), Structural: true}
}

func mappingf(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}

// Decode returns the generic value of the one object filling payload exactly: nil, bool, int64
// (uint64 above math.MaxInt64), float64, string, []byte (aliasing payload), []any or
// map[string]any. It fails with an *Error.
func Decode(payload []byte) (any, error) { return DecodeWith(payload, nil) }

// DecodeWith is Decode with a hook given every map once it is read, innermost first; what the
// hook returns replaces the map. A hook's error fails the decoding with a *HookError.
func DecodeWith(payload []byte, hook DecodeHook) (any, error) {
	return DecodeHooked(payload, hook, nil)
}

// DecodeHooked is DecodeWith with the hook given only the maps that hold one of keys (every map
// when keys is empty).
func DecodeHooked(payload []byte, hook DecodeHook, keys []string) (any, error) {
	d := decoder{data: payload, hook: hook, hookKeys: keys}
	return d.whole()
}

// whole decodes the one object that must fill d.data exactly.
func (d *decoder) whole() (any, error) {
	if len(d.data) == 0 {
		return nil, structuralf("empty payload")
	}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.pos != len(d.data) {
		return nil, structuralf("%d trailing bytes after the object", len(d.data)-d.pos)
	}
	return v, nil
}

func (d *decoder) need(n uint64, what string) error {
	if uint64(len(d.data)-d.pos) < n {
		return d.truncated(n, what)
	}
	return nil
}

func (d *decoder) byte1() (byte, error) {
	if d.pos >= len(d.data) {
		return 0, errTruncatedObject
	}
	b := d.data[d.pos]
	d.pos++
	return b, nil
}

// errTruncatedObject is byte1's error, made once so that byte1, called for every object, is
// small enough to be inlined. (An *Error is never modified once made.)
var errTruncatedObject = structuralf("truncated object")

// truncated is need's error, kept out of line so that need is small enough to be inlined.
//
//go:noinline
func (d *decoder) truncated(n uint64, what string) error {
	return structuralf("truncated %s: %d bytes declared, %d present", what, n, len(d.data)-d.pos)
}

// uintN reads a big-endian unsigned integer of size bytes.
func (d *decoder) uintN(size int) (uint64, error) {
	if err := d.need(uint64(size), "header"); err != nil {
		return 0, err
	}
	b := d.data[d.pos : d.pos+size]
	d.pos += size
	switch size {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(b)), nil
	}
	return binary.BigEndian.Uint64(b), nil
}

func (d *decoder) bytesN(n uint64, what string) ([]byte, error) {
	if err := d.need(n, what); err != nil {
		return nil, err
	}
	// The payload buffer is never reused by the framing layer, so the slice can alias it.
	out := d.data[d.pos : d.pos+int(n) : d.pos+int(n)]
	d.pos += int(n)
	return out, nil
}

func (d *decoder) str(n uint64) (string, error) {
	b, err := d.bytesN(n, "str")
	if err != nil {
		return "", err
	}
	if s, ok := envelopeString(b); ok {
		return s, nil
	}
	if !utf8.Valid(b) {
		return "", mappingf("str is not valid UTF-8")
	}
	return string(b), nil
}

// strValue is str for a value: the envelope's strings come pre-boxed, so that they cost no
// allocation at all.
func (d *decoder) strValue(n uint64) (any, error) {
	if uint64(len(d.data)-d.pos) >= n {
		if v, ok := envelopeValue(d.data[d.pos : d.pos+int(n)]); ok {
			d.pos += int(n)
			return v, nil
		}
	}
	return d.str(n)
}

// envelopeString returns the JSON-RPC envelope's member names without allocating: every message
// carries several of them. (A switch on string(b) does not allocate.)
func envelopeString(b []byte) (string, bool) {
	switch string(b) {
	case "jsonrpc":
		return "jsonrpc", true
	case "id":
		return "id", true
	case "method":
		return "method", true
	case "params":
		return "params", true
	case "result":
		return "result", true
	case "error":
		return "error", true
	case "code":
		return "code", true
	case "message":
		return "message", true
	case "data":
		return "data", true
	}
	return "", false
}

// envelopeValue is envelopeString for values, plus the version every message carries, boxed at
// compile time.
func envelopeValue(b []byte) (any, bool) {
	if string(b) == "2.0" {
		return "2.0", true
	}
	if s, ok := envelopeString(b); ok {
		return s, true // the names are values too when a method is called "data" and the like
	}
	return nil, false
}

// value reads one object; depth is the number of containers around it.
func (d *decoder) value(depth int) (any, error) {
	c, err := d.byte1()
	if err != nil {
		return nil, err
	}
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c >= 0xa0 && c <= 0xbf:
		return d.strValue(uint64(c & 0x1f))
	case c >= 0x90 && c <= 0x9f:
		return d.array(uint64(c&0x0f), depth)
	case c >= 0x80 && c <= 0x8f:
		return d.mapping(uint64(c&0x0f), depth)
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xcc, 0xcd, 0xce, 0xcf: // uint 8/16/32/64
		u, err := d.uintN(1 << (c - 0xcc))
		if err != nil {
			return nil, err
		}
		if u > math.MaxInt64 {
			return u, nil
		}
		return int64(u), nil
	case 0xd0, 0xd1, 0xd2, 0xd3: // int 8/16/32/64
		return d.signed(c)
	case 0xca, 0xcb: // float 32/64
		return d.float(c)
	case 0xd9, 0xda, 0xdb: // str 8/16/32
		n, err := d.uintN(1 << (c - 0xd9))
		if err != nil {
			return nil, err
		}
		return d.str(n)
	case 0xc4, 0xc5, 0xc6: // bin 8/16/32
		n, err := d.uintN(1 << (c - 0xc4))
		if err != nil {
			return nil, err
		}
		return d.bytesN(n, "bin")
	case 0xdc, 0xdd: // array 16/32
		n, err := d.uintN(2 << (c - 0xdc))
		if err != nil {
			return nil, err
		}
		return d.array(n, depth)
	case 0xde, 0xdf: // map 16/32
		n, err := d.uintN(2 << (c - 0xde))
		if err != nil {
			return nil, err
		}
		return d.mapping(n, depth)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xc7, 0xc8, 0xc9:
		return nil, d.ext(c)
	}
	return nil, structuralf("byte 0x%02x is never used in MessagePack", c)
}

// ext reads the ext type byte to name it in the error: ext types are outside the mapping.
func (d *decoder) ext(c byte) error {
	if c >= 0xc7 && c <= 0xc9 {
		if _, err := d.uintN(1 << (c - 0xc7)); err != nil {
			return err
		}
	}
	t, err := d.byte1()
	if err != nil {
		return err
	}
	if int8(t) == -1 {
		return mappingf("ext type -1 (timestamp) is not part of the protocol's mapping: send times as strings or numbers")
	}
	return mappingf("ext type %d is not part of the protocol's mapping", int8(t))
}

func (d *decoder) array(n uint64, depth int) (any, error) {
	if depth >= MaxNestingDepth {
		return nil, mappingf("nesting deeper than %d levels", MaxNestingDepth)
	}
	// Every element takes at least one byte: a count beyond the bytes left is truncated.
	if err := d.need(n, "array"); err != nil {
		return nil, err
	}
	out := make([]any, n)
	for i := range out {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, HookErrorAt(err, i, "")
		}
		out[i] = v
	}
	return out, nil
}

func (d *decoder) mapping(n uint64, depth int) (any, error) {
	if depth >= MaxNestingDepth {
		return nil, mappingf("nesting deeper than %d levels", MaxNestingDepth)
	}
	// Every entry takes at least two bytes (a key and a value).
	if err := d.need(2*n, "map"); err != nil {
		return nil, err
	}
	out := make(map[string]any, n)
	for i := uint64(0); i < n; i++ {
		key, err := d.key(i)
		if err != nil {
			return nil, err
		}
		var v any
		if depth == 0 && d.lazy.key != "" && key == d.lazy.key {
			v, err = d.lazyValue(depth + 1)
		} else {
			v, err = d.value(depth + 1)
		}
		if err != nil {
			return nil, HookErrorAt(err, -1, key)
		}
		out[key] = v
	}
	if d.hook != nil && d.hookWants(out) {
		return d.callHook(out)
	}
	return out, nil
}

// typeName names the MessagePack type that starts with byte c, for error messages.
func typeName(c byte) string {
	switch {
	case c <= 0x7f || c >= 0xe0 || c >= 0xcc && c <= 0xd3:
		return "int"
	case c >= 0x80 && c <= 0x8f || c == 0xde || c == 0xdf:
		return "map"
	case c >= 0x90 && c <= 0x9f || c == 0xdc || c == 0xdd:
		return "array"
	case c == 0xc0:
		return "nil"
	case c == 0xc2 || c == 0xc3:
		return "bool"
	case c == 0xca || c == 0xcb:
		return "float"
	case c >= 0xc4 && c <= 0xc6:
		return "bin"
	case c >= 0xd4 && c <= 0xd8 || c >= 0xc7 && c <= 0xc9:
		return "ext"
	}
	return fmt.Sprintf("0x%02x", c)
}
