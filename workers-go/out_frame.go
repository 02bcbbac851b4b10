package aspectipc

import (
	"bytes"
	"encoding/binary"
	"sync"
)

// outFrame is one frame being built for sending. Its bytes are buf with the large binaries of the
// payload spliced in at the offsets recorded in refs: those are written from where they already
// are (a received frame, the caller's slice) instead of being copied into buf. Frames are
// pooled, so that building one allocates nothing in the steady state.
type outFrame struct {
	buf    []byte
	refs   []outRef
	prefix int // bytes reserved at the start of buf for the framing's header
	parts  [][]byte
}

// outRef is a slice spliced into an outFrame before buf[at].
type outRef struct {
	at   int
	data []byte
}

// refMinSize is the smallest binary spliced in rather than copied: below it, a copy is cheaper
// than one more iovec.
const refMinSize = 8 << 10

// maxPooledBuffer bounds the buffers kept in the pool, so that one huge message does not pin its
// buffer for the life of the process.
const maxPooledBuffer = 256 << 10

var outFramePool = sync.Pool{New: func() any { return new(outFrame) }}

func getOutFrame(prefix int) *outFrame {
	f := outFramePool.Get().(*outFrame)
	f.prefix = prefix
	f.buf = append(f.buf[:0], make([]byte, prefix)...)
	return f
}

// release returns f to the pool; f must not be used after.
func (f *outFrame) release() {
	clear(f.refs) // do not keep the caller's slices alive
	clear(f.parts)
	f.refs, f.parts = f.refs[:0], f.parts[:0]
	if cap(f.buf) > maxPooledBuffer {
		f.buf = nil
	}
	outFramePool.Put(f)
}

// splice adds data to the frame without copying it.
func (f *outFrame) splice(data []byte) {
	if len(data) > 0 {
		f.refs = append(f.refs, outRef{at: len(f.buf), data: data})
	}
}

// payloadSize is the size of everything after the reserved prefix.
func (f *outFrame) payloadSize() int {
	n := len(f.buf) - f.prefix
	for _, r := range f.refs {
		n += len(r.data)
	}
	return n
}

// payloadContains reports whether the payload holds byte c.
func (f *outFrame) payloadContains(c byte) bool {
	if bytes.IndexByte(f.buf[f.prefix:], c) >= 0 {
		return true
	}
	for _, r := range f.refs {
		if bytes.IndexByte(r.data, c) >= 0 {
			return true
		}
	}
	return false
}

// vectors returns the frame as the list of slices to write, in order.
func (f *outFrame) vectors() [][]byte {
	parts, from := f.parts[:0], 0
	for _, r := range f.refs {
		if r.at > from {
			parts = append(parts, f.buf[from:r.at])
		}
		parts = append(parts, r.data)
		from = r.at
	}
	if len(f.buf) > from {
		parts = append(parts, f.buf[from:])
	}
	f.parts = parts
	return parts
}

// inPlaceFraming is a Framing that frames a payload built in an outFrame without copying it:
// the prefix is reserved before the payload is encoded and filled in afterwards.
type inPlaceFraming interface {
	prefixSize() int
	// frameInPlace checks the payload and completes the frame; it fails like Encode would.
	frameInPlace(f *outFrame) error
}

func (LengthPrefixedFraming) prefixSize() int { return 4 }

func (fr LengthPrefixedFraming) frameInPlace(f *outFrame) error {
	n := int64(f.payloadSize())
	if n == 0 {
		return &FramingError{Kind: EmptyFrame}
	}
	if limit := fr.limit(); n > limit {
		return &FramingError{Kind: FrameTooLarge, Size: n, Limit: limit}
	}
	binary.BigEndian.PutUint32(f.buf[:4], uint32(n))
	return nil
}

func (LineDelimitedFraming) prefixSize() int { return 0 }

func (fr LineDelimitedFraming) frameInPlace(f *outFrame) error {
	if f.payloadContains('\n') {
		return &FramingError{Kind: InvalidLine}
	}
	if n, limit := int64(f.payloadSize()), fr.limit(); n > limit {
		return &FramingError{Kind: LineTooLong, Size: n, Limit: limit}
	}
	f.buf = append(f.buf, '\n')
	return nil
}

// appendEncoder is a Codec that encodes into an outFrame, splicing large binaries in.
type appendEncoder interface {
	encodeInto(f *outFrame, value any) error
}
