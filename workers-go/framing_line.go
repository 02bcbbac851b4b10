package aspectipc

import (
	"bytes"
	"io"
)

// DefaultMaxLineLength is the control channel's default line length limit: 1 MiB.
const DefaultMaxLineLength = 1 << 20

// LineDelimitedFraming frames a payload as one line: the payload followed by "\n" (PROTOCOL.md
// section 1). It is the control channel's framing. The zero value uses DefaultMaxLineLength.
type LineDelimitedFraming struct {
	// MaxLineLength is the longest line content accepted or sent, in bytes, without its
	// terminator; 0 means DefaultMaxLineLength.
	MaxLineLength int64
}

func (f LineDelimitedFraming) limit() int64 {
	if f.MaxLineLength <= 0 {
		return DefaultMaxLineLength
	}
	return f.MaxLineLength
}

// Encode returns payload + "\n". A payload containing "\n" is an InvalidLine error and one over
// the limit a LineTooLong error; nothing is produced then.
func (f LineDelimitedFraming) Encode(payload []byte) ([]byte, error) {
	if bytes.IndexByte(payload, '\n') >= 0 {
		return nil, &FramingError{Kind: InvalidLine}
	}
	if limit := f.limit(); int64(len(payload)) > limit {
		return nil, &FramingError{Kind: LineTooLong, Size: int64(len(payload)), Limit: limit}
	}
	out := make([]byte, len(payload)+1)
	copy(out, payload)
	out[len(payload)] = '\n'
	return out, nil
}

// NewDecoder returns a decoder that strips "\r\n" and "\n", skips blank lines and reports an
// over-long line once, as soon as it is known to be too long, then resumes at the next line.
func (f LineDelimitedFraming) NewDecoder() FrameDecoder {
	return &lineDelimitedDecoder{limit: f.limit()}
}

type lineDelimitedDecoder struct {
	limit      int64
	buf        streamBuffer
	scanned    int  // bytes of the buffered tail already known to hold no '\n'
	discarding bool // inside an over-long line already reported: drop up to its '\n'
	eof        bool
}

// Feed implements FrameDecoder; the rest of an over-long line is dropped, not buffered.
func (d *lineDelimitedDecoder) Feed(chunk []byte) {
	if d.eof {
		return
	}
	if d.discarding {
		// Drop the rest of an over-long line without buffering it.
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			return
		}
		d.discarding = false
		chunk = chunk[i+1:]
	}
	d.buf.feed(chunk)
}

// FeedEOF implements FrameDecoder.
func (d *lineDelimitedDecoder) FeedEOF() { d.eof = true }

// Next implements FrameDecoder.
func (d *lineDelimitedDecoder) Next() ([]byte, error) {
	for {
		if d.discarding {
			if d.eof {
				return nil, io.EOF
			}
			return nil, ErrIncomplete
		}
		data := d.buf.buffered()
		i := bytes.IndexByte(data[d.scanned:], '\n')
		if i < 0 {
			d.scanned = len(data)
			// Detect an over-long line before its newline arrives; "+ 1" leaves room for a '\r'.
			if int64(len(data)) > d.limit+1 {
				d.buf.discard()
				d.scanned = 0
				if !d.eof {
					d.discarding = true
				}
				// Only "more than the limit" is known while the line has not ended.
				size := int64(0)
				if d.eof {
					size = int64(len(data))
				}
				return nil, &FramingError{Kind: LineTooLong, Size: size, Limit: d.limit}
			}
			if !d.eof {
				return nil, ErrIncomplete
			}
			d.buf.discard()
			d.scanned = 0
			switch {
			case isBlank(data):
				return nil, io.EOF
			case int64(len(data)) > d.limit:
				return nil, &FramingError{Kind: LineTooLong, Size: int64(len(data)), Limit: d.limit}
			}
			return nil, &FramingError{Kind: Truncated}
		}
		end := d.scanned + i
		d.scanned = 0
		line := d.buf.take(end + 1)[:end]
		if end > 0 && line[end-1] == '\r' {
			line = line[:end-1]
		}
		line = line[:len(line):len(line)]
		if int64(len(line)) > d.limit {
			return nil, &FramingError{Kind: LineTooLong, Size: int64(len(line)), Limit: d.limit}
		}
		if isBlank(line) {
			continue
		}
		return line, nil
	}
}

// isBlank reports whether a line holds only spaces, tabs and '\r' (PROTOCOL.md 1.2).
func isBlank(line []byte) bool {
	for _, c := range line {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}
