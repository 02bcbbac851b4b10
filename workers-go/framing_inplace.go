package aspectipc

import (
	"encoding/binary"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/outframe"
)

// inPlaceFraming is a Framing that frames a payload built in an outframe.Frame without copying it:
// the prefix is reserved before the payload is encoded and filled in afterwards.
type inPlaceFraming interface {
	prefixSize() int
	// frameInPlace checks the payload and completes the frame; it fails like Encode would.
	frameInPlace(f *outframe.Frame) error
}

func (LengthPrefixedFraming) prefixSize() int { return 4 }

func (fr LengthPrefixedFraming) frameInPlace(f *outframe.Frame) error {
	n := int64(f.PayloadSize())
	if n == 0 {
		return &FramingError{Kind: EmptyFrame}
	}
	if limit := fr.limit(); n > limit {
		return &FramingError{Kind: FrameTooLarge, Size: n, Limit: limit}
	}
	binary.BigEndian.PutUint32(f.Buf[:4], uint32(n))
	return nil
}

func (LineDelimitedFraming) prefixSize() int { return 0 }

func (fr LineDelimitedFraming) frameInPlace(f *outframe.Frame) error {
	if f.PayloadContains('\n') {
		return &FramingError{Kind: InvalidLine}
	}
	if n, limit := int64(f.PayloadSize()), fr.limit(); n > limit {
		return &FramingError{Kind: LineTooLong, Size: n, Limit: limit}
	}
	f.Buf = append(f.Buf, '\n')
	return nil
}

// appendEncoder is a Codec that encodes into a frame, splicing large binaries in.
type appendEncoder interface {
	encodeInto(f *outframe.Frame, value any) error
}
