package aspectipc

import (
	"encoding/binary"
	"io"
)

// DefaultMaxFrameSize is the data channel's default frame size limit: 64 MiB.
const DefaultMaxFrameSize = 64 << 20

// MaxFrameSizeLimit is the largest max_frame_size the 4-byte header can express.
const MaxFrameSizeLimit = 1<<32 - 1

// LengthPrefixedFraming frames a payload as a 4-byte big-endian length followed by the payload
// (PROTOCOL.md section 2). It is the data channel's framing. The zero value uses
// DefaultMaxFrameSize.
type LengthPrefixedFraming struct {
	// MaxFrameSize is the largest payload accepted or sent, in bytes; 0 means
	// DefaultMaxFrameSize.
	MaxFrameSize int64
}

func (f LengthPrefixedFraming) limit() int64 {
	if f.MaxFrameSize <= 0 {
		return DefaultMaxFrameSize
	}
	if f.MaxFrameSize > MaxFrameSizeLimit {
		return MaxFrameSizeLimit
	}
	return f.MaxFrameSize
}

// Encode returns the 4-byte header followed by payload. An empty payload is an EmptyFrame error
// and a payload over the limit a FrameTooLarge error; nothing is produced then.
func (f LengthPrefixedFraming) Encode(payload []byte) ([]byte, error) {
	n := int64(len(payload))
	if n == 0 {
		return nil, &FramingError{Kind: EmptyFrame}
	}
	if limit := f.limit(); n > limit {
		return nil, &FramingError{Kind: FrameTooLarge, Size: n, Limit: limit}
	}
	out := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(out, uint32(n))
	copy(out[4:], payload)
	return out, nil
}

// NewDecoder returns a decoder that rejects an oversized or empty frame from its header alone,
// before buffering anything for its payload.
func (f LengthPrefixedFraming) NewDecoder() FrameDecoder {
	return newLengthPrefixedDecoder(f.limit(), readBufferSize, largeFrameSize)
}

// The decoder's buffers. Reads go into a read buffer the decoder keeps and reuses; a small frame
// is copied out of it into a frame of its own once complete. A large frame (largeFrameSize bytes
// or more, or too big for the read buffer) gets a buffer of its own as soon as its header is
// read, and the rest of it is read straight into that buffer: it is never accumulated and then
// copied.
//
// What a header declares is not reserved on trust, though (a peer can declare 4 GiB in 4 bytes).
// A frame of up to exactReserveSize gets its exact buffer at once: a header alone reserves that
// much at most, and the frames of a busy channel (1 MiB, say) are allocated once and never copied
// (starting them smaller cost a 256 KiB allocation and copy per frame, and a quarter more garbage
// to collect). A bigger frame's buffer starts at largeInitialSize and doubles as bytes arrive,
// until 1/reserveRatio of the frame has arrived; then the buffer of the frame's exact size is
// allocated and the rest is read in place. So the decoder never reserves more than
// exactReserveSize or reserveRatio times what arrived, and copies at most 2/reserveRatio of a
// frame.
const (
	readBufferSize   = 32 << 10
	largeFrameSize   = 16 << 10
	exactReserveSize = 4 << 20
	largeInitialSize = 256 << 10
	reserveRatio     = 16
	// headerReadSize bounds the read after a large frame, so that little of the next frame (if
	// large too) lands in the read buffer and has to be copied.
	headerReadSize = 4 << 10
)

// lengthPrefixedDecoder is sans-IO like every decoder, but it also lends the buffer to read into
// (readBuffer/commit), so that a reader fills large frames in place instead of handing chunks that
// Feed must copy. The frames it returns are never written again.
type lengthPrefixedDecoder struct {
	limit        int64
	bufferSize   int // readBufferSize (tests use others)
	largeFrame   int // largeFrameSize (tests use others)
	largeInitial int // largeInitialSize, or less for tiny frames (tests)
	exactReserve int // exactReserveSize, or less for tiny frames (tests)
	headerRead   int // headerReadSize, or less for tiny buffers (tests)

	buf  []byte // the read buffer: bytes read and not consumed yet are buf[r:w]
	r, w int

	large       []byte   // the own buffer of a large frame being filled, or nil
	largeSize   int      // the size of that frame: large grows until it is this long
	largeFilled int      // bytes of large filled so far
	ready       [][]byte // complete large frames, which come before anything in buf
	afterLarge  bool     // the last frame was large: read a little until the next header is known

	eof bool
	err error // sticky: length-prefixed errors are fatal
}

func newLengthPrefixedDecoder(limit int64, bufferSize, large int) *lengthPrefixedDecoder {
	return &lengthPrefixedDecoder{
		limit:        limit,
		bufferSize:   bufferSize,
		largeFrame:   large,
		largeInitial: max(1, min(largeInitialSize, 16*large)),
		exactReserve: max(1, min(exactReserveSize, 256*large)),
		headerRead:   max(1, min(headerReadSize, bufferSize/2)),
	}
}

// Feed implements FrameDecoder.
func (d *lengthPrefixedDecoder) Feed(chunk []byte) {
	if d.err != nil || d.eof {
		return // the stream is dead or over: nothing more is buffered
	}
	for len(chunk) > 0 {
		buf := d.readBuffer()
		if d.large == nil && len(buf) < len(chunk) {
			// Fed without Next in between, complete frames can pile up: take the whole chunk.
			d.reserve(d.w - d.r + len(chunk))
			buf = d.buf[d.w:]
		}
		n := copy(buf, chunk)
		d.commit(n)
		chunk = chunk[n:]
	}
}

// FeedEOF implements FrameDecoder.
func (d *lengthPrefixedDecoder) FeedEOF() { d.eof = true }

// readBuffer returns the (non-empty) buffer the next read should fill: once the header of a large
// frame is read, the frame's own buffer; otherwise room in the read buffer. A header over the
// limit never gets anything allocated for its frame.
func (d *lengthPrefixedDecoder) readBuffer() []byte {
	if d.large != nil {
		if d.largeFilled == len(d.large) {
			d.growLarge()
		}
		return d.large[d.largeFilled:]
	}
	pending := d.w - d.r
	need := pending + d.headerRead
	if n, ok := d.incompleteFrame(); ok {
		if n >= d.largeFrame || 4+n > d.bufferSize {
			arrived := d.buf[d.r+4 : d.w]
			d.large = make([]byte, d.largeReserve(n, len(arrived)))
			d.largeSize = n
			d.largeFilled = copy(d.large, arrived)
			d.r = d.w
			if d.largeFilled == len(d.large) {
				d.growLarge()
			}
			return d.large[d.largeFilled:]
		}
		need = max(need, 4+n) // the whole small frame fits: it is moved once at most
	}
	d.reserve(need)
	if d.afterLarge && pending < 4 {
		return d.buf[d.w : d.w+d.headerRead]
	}
	return d.buf[d.w:]
}

// reserve makes room for at least size bytes from the read position, moving the unconsumed bytes
// to the front of the read buffer (nothing handed out shares it) or into a bigger one.
func (d *lengthPrefixedDecoder) reserve(size int) {
	if len(d.buf)-d.r >= size && len(d.buf)-d.w >= d.headerRead {
		return
	}
	pending := d.w - d.r
	if len(d.buf) < size {
		grown := make([]byte, max(d.bufferSize, size, 2*pending))
		copy(grown, d.buf[d.r:d.w])
		d.buf = grown
	} else {
		copy(d.buf, d.buf[d.r:d.w])
	}
	d.r, d.w = 0, pending
}

// largeReserve is the size of the buffer for a large frame of n bytes of which arrived are here.
func (d *lengthPrefixedDecoder) largeReserve(n, arrived int) int {
	if n <= d.exactReserve || arrived >= n/reserveRatio {
		return n
	}
	return min(n, max(d.largeInitial, 2*arrived))
}

// growLarge replaces the full buffer of a large frame by a bigger one.
func (d *lengthPrefixedDecoder) growLarge() {
	grown := make([]byte, d.largeReserve(d.largeSize, d.largeFilled))
	copy(grown, d.large[:d.largeFilled])
	d.large = grown
}

// incompleteFrame returns the payload size of the frame at the read position when its header is
// buffered, valid, and its payload not complete yet.
func (d *lengthPrefixedDecoder) incompleteFrame() (int, bool) {
	if d.w-d.r < 4 {
		return 0, false
	}
	n := int64(binary.BigEndian.Uint32(d.buf[d.r:]))
	if n == 0 || n > d.limit || int64(d.w-d.r-4) >= n {
		return 0, false
	}
	return int(n), true
}

// commit records that the first n bytes of the last readBuffer were filled.
func (d *lengthPrefixedDecoder) commit(n int) {
	if d.large == nil {
		d.w += n
		return
	}
	d.largeFilled += n
	if d.largeFilled == d.largeSize {
		d.ready = append(d.ready, d.large)
		d.large = nil
		d.afterLarge = true
	}
}

// Next implements FrameDecoder: the header is checked before anything is buffered for the
// payload.
func (d *lengthPrefixedDecoder) Next() ([]byte, error) {
	if d.err != nil {
		return nil, d.err
	}
	if len(d.ready) > 0 {
		frame := d.ready[0]
		d.ready[0] = nil
		d.ready = d.ready[1:]
		return frame, nil
	}
	data := d.buf[d.r:d.w]
	if d.large == nil && len(data) >= 4 {
		n := int64(binary.BigEndian.Uint32(data))
		switch {
		case n == 0:
			return nil, d.fail(&FramingError{Kind: EmptyFrame})
		case n > d.limit:
			return nil, d.fail(&FramingError{Kind: FrameTooLarge, Size: n, Limit: d.limit})
		case int64(len(data)-4) >= n:
			// Copied out of the read buffer, which the next read overwrites.
			frame := make([]byte, n)
			copy(frame, data[4:])
			d.r += 4 + int(n)
			d.afterLarge = false
			return frame, nil
		}
	}
	if !d.eof {
		return nil, ErrIncomplete
	}
	if len(data) == 0 && d.large == nil {
		return nil, io.EOF
	}
	return nil, d.fail(&FramingError{Kind: Truncated})
}

// frameLimiter is a FrameDecoder whose limit can change between frames: the data channel accepts
// smaller frames before $/hello than after.
type frameLimiter interface {
	frameLimit() int64
	setFrameLimit(limit int64)
}

func (d *lengthPrefixedDecoder) frameLimit() int64 { return d.limit }

func (d *lengthPrefixedDecoder) setFrameLimit(limit int64) { d.limit = limit }

func (d *lengthPrefixedDecoder) fail(err *FramingError) error {
	d.err = err
	d.buf, d.r, d.w, d.large, d.ready = nil, 0, 0, nil, nil
	return err
}
