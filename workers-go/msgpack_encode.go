package aspectipc

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
)

// mpEncoder writes the protocol's MessagePack mapping (PROTOCOL.md 3.2): integers in their
// shortest format, floats always as float 64, []byte as bin, maps with string keys only (sorted,
// so that output is deterministic). Structs and other composite user types go through
// vmihailenco/msgpack (with `json` tags) and are then re-read strictly and re-written, so they obey
// the same mapping: a time.Time (an ext type) or a float32 field cannot slip through.
type mpEncoder struct {
	buf []byte
	// refs, when set, receives the binaries of refMinSize bytes or more instead of buf: their
	// headers are written, their bytes spliced in at that point when the frame is written.
	refs *[]outRef
	// hops counts the pointers followed on the way to the value being written, to stop on a
	// cycle that holds no container.
	hops int
}

// maxEncodeHops bounds hops: a chain of pointers that long is a cycle.
const maxEncodeHops = 10000

func mpDepthError() error {
	return fmt.Errorf("value nested deeper than %d levels (a cycle?)", maxNestingDepth)
}

var bigIntType = reflect.TypeOf(big.Int{})

// encode writes v; depth is the number of containers around it.
func (e *mpEncoder) encode(v any, depth int) error {
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, 0xc0)
	case bool:
		if x {
			e.buf = append(e.buf, 0xc3)
		} else {
			e.buf = append(e.buf, 0xc2)
		}
	case int64:
		e.writeInt(x)
	case int:
		e.writeInt(int64(x))
	case uint64:
		e.writeUint(x)
	case float64:
		e.writeFloat(x)
	case string:
		return e.writeString(x)
	case []byte:
		e.writeBin(x)
	case []any:
		if depth >= maxNestingDepth {
			return mpDepthError()
		}
		e.writeArrayHeader(len(x))
		for _, item := range x {
			if err := e.encode(item, depth+1); err != nil {
				return err
			}
		}
	case map[string]any:
		if depth >= maxNestingDepth {
			return mpDepthError()
		}
		var small [8]string // messages and most params fit: no allocation to sort their keys
		keys := small[:0]
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		e.writeMapHeader(len(keys))
		for _, k := range keys {
			if err := e.writeString(k); err != nil {
				return err
			}
			if err := e.encode(x[k], depth+1); err != nil {
				return err
			}
		}
	case *big.Int:
		if x == nil {
			e.buf = append(e.buf, 0xc0)
			return nil
		}
		return e.writeBig(x)
	case json.Number:
		n, err := jsonNumber(string(x))
		if err != nil {
			return err
		}
		return e.encode(n, depth)
	case wireResponse:
		if depth >= maxNestingDepth {
			return mpDepthError()
		}
		e.writeMapHeader(3)
		e.buf = append(e.buf, 0xa2, 'i', 'd')
		if err := e.encode(x.id.Value(), depth+1); err != nil {
			return err
		}
		e.buf = append(e.buf, 0xa7, 'j', 's', 'o', 'n', 'r', 'p', 'c', 0xa3, '2', '.', '0', 0xa6, 'r', 'e', 's', 'u', 'l', 't')
		return e.encode(x.result, depth+1)
	case Params:
		return e.encode(x.value, depth)
	case Result:
		return e.encode(x.value, depth)
	default:
		return e.encodeReflect(reflect.ValueOf(v), depth)
	}
	return nil
}

// encodeReflect handles named and composite types by kind.
func (e *mpEncoder) encodeReflect(v reflect.Value, depth int) error {
	t := v.Type()
	if t == bigIntType {
		b := v.Interface().(big.Int)
		return e.writeBig(&b)
	}
	if t.Implements(customEncoderType) || t.Implements(marshalerType) {
		return e.encodeViaLibrary(v, depth)
	}
	switch v.Kind() {
	case reflect.Bool:
		return e.encode(v.Bool(), depth)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.writeInt(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.writeUint(v.Uint())
	case reflect.Float32, reflect.Float64:
		e.writeFloat(v.Float())
	case reflect.String:
		return e.writeString(v.String())
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			e.buf = append(e.buf, 0xc0)
			return nil
		}
		if e.hops++; e.hops > maxEncodeHops {
			return fmt.Errorf("cannot encode %s: more than %d pointers deep (a cycle?)", t, maxEncodeHops)
		}
		err := e.encode(v.Elem().Interface(), depth)
		e.hops--
		return err
	case reflect.Slice:
		if v.IsNil() {
			e.buf = append(e.buf, 0xc0)
			return nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			e.writeBin(v.Bytes())
			return nil
		}
		fallthrough
	case reflect.Array:
		if depth >= maxNestingDepth {
			return mpDepthError()
		}
		e.writeArrayHeader(v.Len())
		for i := 0; i < v.Len(); i++ {
			if err := e.encode(v.Index(i).Interface(), depth+1); err != nil {
				return err
			}
		}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return fmt.Errorf("cannot encode %s: map keys must be strings", t)
		}
		if v.IsNil() {
			e.buf = append(e.buf, 0xc0)
			return nil
		}
		if depth >= maxNestingDepth {
			return mpDepthError()
		}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		e.writeMapHeader(len(keys))
		for _, k := range keys {
			if err := e.writeString(k.String()); err != nil {
				return err
			}
			if err := e.encode(v.MapIndex(k).Interface(), depth+1); err != nil {
				return err
			}
		}
	case reflect.Struct:
		return e.encodeViaLibrary(v, depth)
	default:
		return fmt.Errorf("cannot encode a value of type %s", t)
	}
	return nil
}

var (
	customEncoderType = reflect.TypeOf((*msgpack.CustomEncoder)(nil)).Elem()
	marshalerType     = reflect.TypeOf((*msgpack.Marshaler)(nil)).Elem()
)

// encodeViaLibrary lets vmihailenco/msgpack lay out a struct (fields by `json` tag, omitempty,
// embedding), then re-reads its output strictly and re-writes it with this encoder's rules.
func (e *mpEncoder) encodeViaLibrary(v reflect.Value, depth int) error {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetCustomStructTag("json")
	enc.UseCompactInts(true)
	if err := enc.EncodeValue(v); err != nil {
		return fmt.Errorf("cannot encode %s: %v", v.Type(), err)
	}
	d := mpDecoder{data: buf.Bytes()}
	generic, err := d.value(depth)
	if err != nil {
		return fmt.Errorf("cannot encode %s: %v", v.Type(), err)
	}
	return e.encode(generic, depth)
}

func (e *mpEncoder) writeInt(n int64) {
	switch {
	case n >= 0:
		e.writeUint(uint64(n))
	case n >= -32:
		e.buf = append(e.buf, byte(int8(n)))
	case n >= math.MinInt8:
		e.buf = append(e.buf, 0xd0, byte(int8(n)))
	case n >= math.MinInt16:
		e.buf = binary.BigEndian.AppendUint16(append(e.buf, 0xd1), uint16(int16(n)))
	case n >= math.MinInt32:
		e.buf = binary.BigEndian.AppendUint32(append(e.buf, 0xd2), uint32(int32(n)))
	default:
		e.buf = binary.BigEndian.AppendUint64(append(e.buf, 0xd3), uint64(n))
	}
}

func (e *mpEncoder) writeUint(n uint64) {
	switch {
	case n <= 0x7f:
		e.buf = append(e.buf, byte(n))
	case n <= math.MaxUint8:
		e.buf = append(e.buf, 0xcc, byte(n))
	case n <= math.MaxUint16:
		e.buf = binary.BigEndian.AppendUint16(append(e.buf, 0xcd), uint16(n))
	case n <= math.MaxUint32:
		e.buf = binary.BigEndian.AppendUint32(append(e.buf, 0xce), uint32(n))
	default:
		e.buf = binary.BigEndian.AppendUint64(append(e.buf, 0xcf), n)
	}
}

func (e *mpEncoder) writeBig(b *big.Int) error {
	switch {
	case b.IsInt64():
		e.writeInt(b.Int64())
	case b.IsUint64():
		e.writeUint(b.Uint64())
	default:
		return fmt.Errorf("integer %s is outside [-2^63, 2^64-1]", b)
	}
	return nil
}

// canonicalNaN is the quiet NaN that Python and JavaScript write; Go's math.NaN() has another
// payload (0x7ff8000000000001), so every NaN is written as this one for byte-identical output.
const canonicalNaN = 0x7ff8000000000000

func (e *mpEncoder) writeFloat(f float64) {
	bits := math.Float64bits(f)
	if f != f {
		bits = canonicalNaN
	}
	e.buf = binary.BigEndian.AppendUint64(append(e.buf, 0xcb), bits)
}

func (e *mpEncoder) writeString(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("string %q is not valid UTF-8: send bytes as []byte (bin)", truncateForError(s))
	}
	n := len(s)
	switch {
	case n <= 31:
		e.buf = append(e.buf, 0xa0|byte(n))
	case n <= math.MaxUint8:
		e.buf = append(e.buf, 0xd9, byte(n))
	case n <= math.MaxUint16:
		e.buf = binary.BigEndian.AppendUint16(append(e.buf, 0xda), uint16(n))
	default:
		e.buf = binary.BigEndian.AppendUint32(append(e.buf, 0xdb), uint32(n))
	}
	e.buf = append(e.buf, s...)
	return nil
}

func (e *mpEncoder) writeBin(b []byte) {
	n := len(b)
	switch {
	case n <= math.MaxUint8:
		e.buf = append(e.buf, 0xc4, byte(n))
	case n <= math.MaxUint16:
		e.buf = binary.BigEndian.AppendUint16(append(e.buf, 0xc5), uint16(n))
	default:
		e.buf = binary.BigEndian.AppendUint32(append(e.buf, 0xc6), uint32(n))
	}
	if e.refs != nil && n >= refMinSize {
		*e.refs = append(*e.refs, outRef{at: len(e.buf), data: b})
		return
	}
	e.buf = append(e.buf, b...)
}

func (e *mpEncoder) writeArrayHeader(n int) {
	switch {
	case n <= 15:
		e.buf = append(e.buf, 0x90|byte(n))
	case n <= math.MaxUint16:
		e.buf = binary.BigEndian.AppendUint16(append(e.buf, 0xdc), uint16(n))
	default:
		e.buf = binary.BigEndian.AppendUint32(append(e.buf, 0xdd), uint32(n))
	}
}

func (e *mpEncoder) writeMapHeader(n int) {
	switch {
	case n <= 15:
		e.buf = append(e.buf, 0x80|byte(n))
	case n <= math.MaxUint16:
		e.buf = binary.BigEndian.AppendUint16(append(e.buf, 0xde), uint16(n))
	default:
		e.buf = binary.BigEndian.AppendUint32(append(e.buf, 0xdf), uint32(n))
	}
}

func truncateForError(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
