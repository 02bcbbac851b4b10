package aspectipc

// Framing delimits messages in a byte stream. It is pure: Encode turns one payload into the bytes
// to write, and NewDecoder returns a sans-IO decoder that is fed bytes and yields payloads.
type Framing interface {
	// Encode returns payload framed for the stream. It fails with a *FramingError, and
	// produces nothing, when the payload cannot be sent (too large, empty, ...).
	Encode(payload []byte) ([]byte, error)
	// NewDecoder returns a fresh decoder for one stream.
	NewDecoder() FrameDecoder
}

// FrameDecoder splits a byte stream into payloads. Feed it every chunk read from the stream, call
// FeedEOF once the stream has ended, and call Next until it returns ErrIncomplete or io.EOF.
// The slices Next returns are the caller's to keep: later calls never overwrite them.
type FrameDecoder interface {
	// Feed appends a chunk read from the stream. The decoder copies what it keeps.
	Feed(chunk []byte)
	// FeedEOF signals the end of the stream.
	FeedEOF()
	// Next returns the next complete payload; ErrIncomplete when more bytes are needed; io.EOF
	// after a clean end of stream; or a *FramingError. Whether reading can go on after an error
	// depends on the framing (line_too_long is recoverable, length-prefixed errors are fatal and
	// returned again by every later call).
	Next() ([]byte, error)
}

// bufferLender is a FrameDecoder that lends the buffer the next read fills, so that a reader reads
// bytes in place instead of handing over chunks that Feed must copy. Between reads the caller
// calls Next until it returns ErrIncomplete, like with Feed.
type bufferLender interface {
	// readBuffer returns the non-empty buffer the next read fills.
	readBuffer() []byte
	// commit records that the first n bytes of the last readBuffer were filled.
	commit(n int)
}

// streamBuffer holds the bytes fed to a decoder and not consumed yet. It never writes into a
// region it has handed out, so the frames returned by decoders stay valid.
type streamBuffer struct {
	data  []byte
	start int
}

func (b *streamBuffer) feed(chunk []byte) {
	if len(chunk) == 0 {
		return
	}
	if b.start > 0 {
		// Move the unconsumed tail into a fresh array rather than compacting in place:
		// the consumed head may back frames the caller still holds.
		rest := b.data[b.start:]
		b.data = append(make([]byte, 0, len(rest)+len(chunk)), rest...)
		b.start = 0
	}
	b.data = append(b.data, chunk...)
}

func (b *streamBuffer) buffered() []byte { return b.data[b.start:] }

func (b *streamBuffer) consume(n int) {
	b.start += n
	if b.start == len(b.data) {
		b.data, b.start = nil, 0
	}
}

// take returns the next n bytes as a slice the caller may keep, and consumes them.
func (b *streamBuffer) take(n int) []byte {
	out := b.data[b.start : b.start+n : b.start+n]
	b.consume(n)
	return out
}

func (b *streamBuffer) discard() { b.data, b.start = nil, 0 }
