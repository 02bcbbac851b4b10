// Package outframe holds the frames being built for sending. A Frame's bytes are Buf with the
// large binaries of the payload spliced in at the offsets recorded in Refs: those are written from
// where they already are (a received frame, the caller's slice) instead of being copied into Buf.
// Frames are pooled, so that building one allocates nothing in the steady state.
package outframe

import (
	"bytes"
	"sync"
)

// Frame is one frame being built for sending.
type Frame struct {
	Buf    []byte
	Refs   []Ref
	Prefix int // bytes reserved at the start of Buf for the framing's header
	parts  [][]byte
}

// Ref is a slice spliced into a Frame before Buf[At].
type Ref struct {
	At   int
	Data []byte
}

// RefMinSize is the smallest binary spliced in rather than copied: below it, a copy is cheaper
// than one more iovec.
const RefMinSize = 8 << 10

// maxPooledBuffer bounds the buffers kept in the pool, so that one huge message does not pin its
// buffer for the life of the process.
const maxPooledBuffer = 256 << 10

var pool = sync.Pool{New: func() any { return new(Frame) }}

// Get returns an empty frame from the pool, with prefix bytes reserved for the header.
func Get(prefix int) *Frame {
	f := pool.Get().(*Frame)
	f.Prefix = prefix
	f.Buf = append(f.Buf[:0], make([]byte, prefix)...)
	return f
}

// Release returns f to the pool; f must not be used after.
func (f *Frame) Release() {
	clear(f.Refs) // do not keep the caller's slices alive
	clear(f.parts)
	f.Refs, f.parts = f.Refs[:0], f.parts[:0]
	if cap(f.Buf) > maxPooledBuffer {
		f.Buf = nil
	}
	pool.Put(f)
}

// Splice adds data to the frame without copying it.
func (f *Frame) Splice(data []byte) {
	if len(data) > 0 {
		f.Refs = append(f.Refs, Ref{At: len(f.Buf), Data: data})
	}
}

// PayloadSize is the size of everything after the reserved prefix.
func (f *Frame) PayloadSize() int {
	n := len(f.Buf) - f.Prefix
	for _, r := range f.Refs {
		n += len(r.Data)
	}
	return n
}

// PayloadContains reports whether the payload holds byte c.
func (f *Frame) PayloadContains(c byte) bool {
	if bytes.IndexByte(f.Buf[f.Prefix:], c) >= 0 {
		return true
	}
	for _, r := range f.Refs {
		if bytes.IndexByte(r.Data, c) >= 0 {
			return true
		}
	}
	return false
}

// Vectors returns the frame as the list of slices to write, in order.
func (f *Frame) Vectors() [][]byte {
	parts, from := f.parts[:0], 0
	for _, r := range f.Refs {
		if r.At > from {
			parts = append(parts, f.Buf[from:r.At])
		}
		parts = append(parts, r.Data)
		from = r.At
	}
	if len(f.Buf) > from {
		parts = append(parts, f.Buf[from:])
	}
	f.parts = parts
	return parts
}
