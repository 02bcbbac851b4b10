package msgpack

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"unicode/utf8"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/outframe"
)

func (e *Encoder) writeInt(n int64) {
	switch {
	case n >= 0:
		e.writeUint(uint64(n))
	case n >= -32:
		e.Buf = append(e.Buf, byte(int8(n)))
	case n >= math.MinInt8:
		e.Buf = append(e.Buf, 0xd0, byte(int8(n)))
	case n >= math.MinInt16:
		e.Buf = binary.BigEndian.AppendUint16(append(e.Buf, 0xd1), uint16(int16(n)))
	case n >= math.MinInt32:
		e.Buf = binary.BigEndian.AppendUint32(append(e.Buf, 0xd2), uint32(int32(n)))
	default:
		e.Buf = binary.BigEndian.AppendUint64(append(e.Buf, 0xd3), uint64(n))
	}
}

func (e *Encoder) writeUint(n uint64) {
	switch {
	case n <= 0x7f:
		e.Buf = append(e.Buf, byte(n))
	case n <= math.MaxUint8:
		e.Buf = append(e.Buf, 0xcc, byte(n))
	case n <= math.MaxUint16:
		e.Buf = binary.BigEndian.AppendUint16(append(e.Buf, 0xcd), uint16(n))
	case n <= math.MaxUint32:
		e.Buf = binary.BigEndian.AppendUint32(append(e.Buf, 0xce), uint32(n))
	default:
		e.Buf = binary.BigEndian.AppendUint64(append(e.Buf, 0xcf), n)
	}
}

func (e *Encoder) writeBig(b *big.Int) error {
	switch {
	case b.IsInt64():
		e.writeInt(b.Int64())
	case b.IsUint64():
		e.writeUint(b.Uint64())
	default:
		return &EncodeError{Kind: IntegerRange, Subject: "integer " + truncateForError(b.String()), Predicate: " is outside [-2^63, 2^64-1]"}
	}
	return nil
}

// canonicalNaN is the quiet NaN that Python and JavaScript write; Go's math.NaN() has another
// payload (0x7ff8000000000001), so every NaN is written as this one for byte-identical output.
const canonicalNaN = 0x7ff8000000000000

func (e *Encoder) writeFloat(f float64) {
	bits := math.Float64bits(f)
	if f != f {
		bits = canonicalNaN
	}
	e.Buf = binary.BigEndian.AppendUint64(append(e.Buf, 0xcb), bits)
}

func (e *Encoder) writeString(s string) error {
	if !utf8.ValidString(s) {
		return invalid(fmt.Sprintf("string %q", truncateForError(s)), " is not valid UTF-8: send bytes as []byte (bin)")
	}
	n := len(s)
	switch {
	case n <= 31:
		e.Buf = append(e.Buf, 0xa0|byte(n))
	case n <= math.MaxUint8:
		e.Buf = append(e.Buf, 0xd9, byte(n))
	case n <= math.MaxUint16:
		e.Buf = binary.BigEndian.AppendUint16(append(e.Buf, 0xda), uint16(n))
	default:
		e.Buf = binary.BigEndian.AppendUint32(append(e.Buf, 0xdb), uint32(n))
	}
	e.Buf = append(e.Buf, s...)
	return nil
}

func (e *Encoder) writeBin(b []byte) {
	n := len(b)
	switch {
	case n <= math.MaxUint8:
		e.Buf = append(e.Buf, 0xc4, byte(n))
	case n <= math.MaxUint16:
		e.Buf = binary.BigEndian.AppendUint16(append(e.Buf, 0xc5), uint16(n))
	default:
		e.Buf = binary.BigEndian.AppendUint32(append(e.Buf, 0xc6), uint32(n))
	}
	if e.Refs != nil && n >= outframe.RefMinSize {
		*e.Refs = append(*e.Refs, outframe.Ref{At: len(e.Buf), Data: b})
		return
	}
	e.Buf = append(e.Buf, b...)
}

func (e *Encoder) writeArrayHeader(n int) {
	switch {
	case n <= 15:
		e.Buf = append(e.Buf, 0x90|byte(n))
	case n <= math.MaxUint16:
		e.Buf = binary.BigEndian.AppendUint16(append(e.Buf, 0xdc), uint16(n))
	default:
		e.Buf = binary.BigEndian.AppendUint32(append(e.Buf, 0xdd), uint32(n))
	}
}

// WriteMapHeader writes the header of a map of n entries.
func (e *Encoder) WriteMapHeader(n int) { e.writeMapHeader(n) }

func (e *Encoder) writeMapHeader(n int) {
	switch {
	case n <= 15:
		e.Buf = append(e.Buf, 0x80|byte(n))
	case n <= math.MaxUint16:
		e.Buf = binary.BigEndian.AppendUint16(append(e.Buf, 0xde), uint16(n))
	default:
		e.Buf = binary.BigEndian.AppendUint32(append(e.Buf, 0xdf), uint32(n))
	}
}

func truncateForError(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
