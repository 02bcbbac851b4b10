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
	return &lengthPrefixedDecoder{limit: f.limit()}
}

type lengthPrefixedDecoder struct {
	limit int64
	buf   streamBuffer
	eof   bool
	err   error // sticky: length-prefixed errors are fatal
}

// Feed implements FrameDecoder.
func (d *lengthPrefixedDecoder) Feed(chunk []byte) {
	if d.err != nil || d.eof {
		return // the stream is dead or over: nothing more is buffered
	}
	d.buf.feed(chunk)
}

// FeedEOF implements FrameDecoder.
func (d *lengthPrefixedDecoder) FeedEOF() { d.eof = true }

// Next implements FrameDecoder: the header is checked before anything is buffered for the
// payload.
func (d *lengthPrefixedDecoder) Next() ([]byte, error) {
	if d.err != nil {
		return nil, d.err
	}
	data := d.buf.buffered()
	if len(data) >= 4 {
		n := int64(binary.BigEndian.Uint32(data))
		switch {
		case n == 0:
			return nil, d.fail(&FramingError{Kind: EmptyFrame})
		case n > d.limit:
			return nil, d.fail(&FramingError{Kind: FrameTooLarge, Size: n, Limit: d.limit})
		case int64(len(data)-4) >= n:
			d.buf.consume(4)
			return d.buf.take(int(n)), nil
		}
	}
	if !d.eof {
		return nil, ErrIncomplete
	}
	if len(data) == 0 {
		return nil, io.EOF
	}
	return nil, d.fail(&FramingError{Kind: Truncated})
}

func (d *lengthPrefixedDecoder) fail(err *FramingError) error {
	d.err = err
	d.buf.discard()
	return err
}
