package aspectipc

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"unsafe"
)

// decoderShapes are buffer sizes that make the length-prefixed decoder take every path on small
// inputs: tiny read buffers moved and grown all the time, frames of a few bytes read into buffers
// of their own (which grow), and the production sizes.
var decoderShapes = []struct {
	name          string
	buffer, large int
}{
	{"production", readBufferSize, largeFrameSize},
	{"tiny-buffer", 8, 1 << 30},
	{"own-buffers", 16, 2},
	{"one-byte-large", 32, 1},
}

// readDecoder drives dec the way Channel.Run does: each chunk is read into the buffer dec lends
// (a read fills at most that buffer), and Next is called until it has nothing more after every
// read. It returns the events and the frames, still held.
func readDecoder(dec *lengthPrefixedDecoder, chunks [][]byte, eof bool) ([]frameEvent, [][]byte) {
	var events []frameEvent
	var frames [][]byte
	dead := false
	collect := func() {
		for !dead {
			frame, err := dec.Next()
			if err == nil {
				events = append(events, frameEvent{frame: hex.EncodeToString(frame)})
				frames = append(frames, frame)
				continue
			}
			var fe *FramingError
			if errors.As(err, &fe) {
				events = append(events, frameEvent{err: string(fe.Kind)})
				dead = true
			}
			return
		}
	}
	for _, chunk := range chunks {
		for len(chunk) > 0 && !dead {
			buf := dec.readBuffer()
			if len(buf) == 0 {
				panic("readBuffer lent an empty buffer")
			}
			n := copy(buf, chunk)
			dec.commit(n)
			chunk = chunk[n:]
			collect()
		}
	}
	if eof && !dead {
		dec.FeedEOF()
		collect()
	}
	return events, frames
}

// TestLengthPrefixedReadPathVectors runs the framing vectors through the read path (and Feed) with
// every buffer shape and every chunking: the events are the vectors', whatever the path.
func TestLengthPrefixedReadPathVectors(t *testing.T) {
	t.Parallel()
	doc := loadVectorFile(t, filepath.Join(vectorsDir, "framing-length-prefixed.json"))
	defaultLimit := intOf(doc["max_frame_size"], 0)
	for _, c := range cases(doc, "cases") {
		limit := intOf(c["max_frame_size"], defaultLimit)
		input := unhex(t, c["input"])
		want := expectedEvents(c)
		eof, _ := c["eof"].(bool)
		for _, shape := range decoderShapes {
			for name, chunks := range chunkings(input) {
				dec := newLengthPrefixedDecoder(limit, shape.buffer, shape.large)
				if got, _ := readDecoder(dec, chunks, eof); !reflect.DeepEqual(got, want) {
					t.Fatalf("%s, %s, read %s: events %v, want %v", c["id"], shape.name, name, got, want)
				}
				dec = newLengthPrefixedDecoder(limit, shape.buffer, shape.large)
				if got := feedDecoder(dec, chunks, eof, true); !reflect.DeepEqual(got, want) {
					t.Fatalf("%s, %s, fed %s: events %v, want %v", c["id"], shape.name, name, got, want)
				}
			}
		}
	}
}

// TestLengthPrefixedFramesAreNeverOverwritten keeps every frame returned while many more are
// read: none changes, whether it was copied out of the read buffer or read into its own.
func TestLengthPrefixedFramesAreNeverOverwritten(t *testing.T) {
	t.Parallel()
	var stream []byte
	var want []string
	for i := 0; i < 200; i++ {
		payload := bytes.Repeat([]byte{byte(i)}, 1+i*37%3000)
		want = append(want, hex.EncodeToString(payload))
		stream = binary.BigEndian.AppendUint32(stream, uint32(len(payload)))
		stream = append(stream, payload...)
	}
	for _, shape := range decoderShapes {
		for _, step := range []int{7, 4096, len(stream)} {
			var chunks [][]byte
			for rest := stream; len(rest) > 0; rest = rest[min(step, len(rest)):] {
				chunks = append(chunks, rest[:min(step, len(rest))])
			}
			_, frames := readDecoder(newLengthPrefixedDecoder(1<<20, shape.buffer, shape.large), chunks, true)
			if len(frames) != len(want) {
				t.Fatalf("%s, step %d: %d frames, want %d", shape.name, step, len(frames), len(want))
			}
			for i, f := range frames {
				if hex.EncodeToString(f) != want[i] {
					t.Fatalf("%s, step %d: frame %d changed after it was returned", shape.name, step, i)
				}
				if cap(f) != len(f) {
					t.Fatalf("%s: frame %d has room past its end (cap %d, len %d): appending would clobber the next", shape.name, i, cap(f), len(f))
				}
			}
		}
	}
}

// TestLengthPrefixedLargeFrameIsReadInPlace: a large frame is read into buffers the decoder
// lends, and once a sixteenth of it has arrived, into the frame's own buffer: at most an eighth
// of the frame is read anywhere else (and copied), and the frame returned is that buffer.
func TestLengthPrefixedLargeFrameIsReadInPlace(t *testing.T) {
	t.Parallel()
	const size = 4 << 20
	dec := LengthPrefixedFraming{}.NewDecoder().(*lengthPrefixedDecoder)
	n := copy(dec.readBuffer(), binary.BigEndian.AppendUint32(nil, size))
	dec.commit(n)
	type read struct{ start, end uintptr }
	var reads []read
	for left := size; left > 0; {
		buf := dec.readBuffer()
		n := min(len(buf), 64<<10, left) // what one read of a socket returns
		reads = append(reads, read{addressOf(buf), addressOf(buf) + uintptr(n)})
		for i := range buf[:n] {
			buf[i] = byte(left - i)
		}
		dec.commit(n)
		left -= n
	}
	frame, err := dec.Next()
	if err != nil || len(frame) != size {
		t.Fatalf("frame of %d bytes, %v", len(frame), err)
	}
	for i := range frame {
		if frame[i] != byte(size-i) {
			t.Fatalf("byte %d of the frame is wrong", i)
		}
	}
	start, end := addressOf(frame), addressOf(frame)+size
	elsewhere := 0
	for _, r := range reads {
		if r.start < start || r.end > end {
			elsewhere += int(r.end - r.start)
		}
	}
	if elsewhere > size/8 {
		t.Fatalf("%d of %d bytes were read outside the frame's buffer", elsewhere, size)
	}
	if last := reads[len(reads)-1]; last.end != end {
		t.Fatal("the last read did not go into the frame's buffer")
	}
}

func addressOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

// TestLengthPrefixedHeaderAloneReservesLittle: a header declaring 4 GiB within a 4 GiB limit,
// followed by 1 KiB, makes the decoder reserve memory in proportion to what arrived, not to what
// was declared.
func TestLengthPrefixedHeaderAloneReservesLittle(t *testing.T) {
	dec := LengthPrefixedFraming{MaxFrameSize: MaxFrameSizeLimit}.NewDecoder().(*lengthPrefixedDecoder)
	allocated := bytesAllocated(func() {
		declared := append([]byte{0xff, 0xff, 0xff, 0xff}, make([]byte, 1024)...)
		for len(declared) > 0 {
			n := copy(dec.readBuffer(), declared)
			dec.commit(n)
			declared = declared[n:]
		}
		if _, err := dec.Next(); !errors.Is(err, ErrIncomplete) {
			t.Errorf("4 GiB declared within the limit: %v", err)
		}
		if lent := len(dec.readBuffer()); lent > largeInitialSize {
			t.Errorf("lent %d bytes after 1 KiB of a frame", lent)
		}
	})
	if allocated > 1<<20 {
		t.Errorf("allocated %d bytes for 1 KiB of a frame declared 4 GiB", allocated)
	}
}

// TestLengthPrefixedOversizeHeaderLendsNothingForIt: a header over the limit is rejected before
// anything is allocated for its frame, on the read path too.
func TestLengthPrefixedOversizeHeaderLendsNothingForIt(t *testing.T) {
	dec := LengthPrefixedFraming{MaxFrameSize: 1 << 20}.NewDecoder().(*lengthPrefixedDecoder)
	n := copy(dec.readBuffer(), []byte{0x00, 0x20, 0x00, 0x00}) // 2 MiB declared
	dec.commit(n)
	allocated := bytesAllocated(func() {
		buf := dec.readBuffer() // what a reader that reads before checking would get
		if len(buf) >= 2<<20 {
			t.Errorf("lent %d bytes for an oversized frame", len(buf))
		}
	})
	if allocated > 64<<10 {
		t.Errorf("allocated %d bytes after an oversized header", allocated)
	}
	var fe *FramingError
	if _, err := dec.Next(); !errors.As(err, &fe) || fe.Kind != FrameTooLarge {
		t.Fatalf("oversized header: %v", err)
	}
}

// TestLengthPrefixedFrameUpToExactReserveIsAllocatedOnce: a 1 MiB frame whose header comes with
// little of it (a read after a large frame is short) gets one buffer of its exact size at once,
// filled in place: no smaller buffer first, no copy into a bigger one.
func TestLengthPrefixedFrameUpToExactReserveIsAllocatedOnce(t *testing.T) {
	const size = 1<<20 + 40 // an echo of 1 MiB: the binary and its envelope
	frame := make([]byte, 4+size)
	binary.BigEndian.PutUint32(frame, size)
	for i := 4; i < len(frame); i++ {
		frame[i] = byte(i)
	}
	dec := LengthPrefixedFraming{}.NewDecoder().(*lengthPrefixedDecoder)
	var got []byte
	allocated := bytesAllocated(func() {
		n := copy(dec.readBuffer()[:1024], frame) // the header and 1020 bytes of the frame
		dec.commit(n)
		rest := frame[n:]
		buf := dec.readBuffer()
		if len(buf) != len(rest) {
			t.Fatalf("lent %d bytes with %d of the frame to come", len(buf), len(rest))
		}
		dec.commit(copy(buf, rest))
		var err error
		if got, err = dec.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if !bytes.Equal(got, frame[4:]) {
		t.Fatal("the frame came out altered")
	}
	if allocated > size+64<<10 {
		t.Errorf("allocated %d bytes for a frame of %d", allocated, size)
	}
}
