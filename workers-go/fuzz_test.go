package aspectipc

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
)

// FuzzLengthPrefixedDecoder checks that the length-prefixed decoder never panics, never returns a
// frame over its limit, and yields the same events however the input is chunked, whether it is
// fed or read into the buffers it lends (with every buffer shape), and that no frame changes
// after it was returned.
func FuzzLengthPrefixedDecoder(f *testing.F) {
	for _, seed := range vectorSeeds(f, "framing-length-prefixed.json", "cases", "encode_cases") {
		f.Add(seed, uint(len(seed)/2))
	}
	f.Fuzz(func(t *testing.T, input []byte, split uint) {
		framing := LengthPrefixedFraming{MaxFrameSize: 1024}
		checkChunkingInvariance(t, framing, input, split, true)
		whole := feedDecoder(framing.NewDecoder(), [][]byte{input}, true, true)
		for _, ev := range whole {
			if len(ev.frame)/2 > 1024 {
				t.Fatalf("frame of %d bytes over the 1024 limit", len(ev.frame)/2)
			}
		}
		at := int(split % uint(len(input)+1))
		for _, shape := range decoderShapes {
			dec := newLengthPrefixedDecoder(1024, shape.buffer, shape.large)
			events, frames := readDecoder(dec, [][]byte{input[:at], input[at:]}, true)
			if !reflect.DeepEqual(events, whole) {
				t.Fatalf("%s, read split at %d: %v, fed whole: %v", shape.name, at, events, whole)
			}
			i := 0
			for _, ev := range events {
				if ev.err != "" {
					continue
				}
				if hex.EncodeToString(frames[i]) != ev.frame {
					t.Fatalf("%s: frame %d changed after it was returned", shape.name, i)
				}
				i++
			}
		}
	})
}

// FuzzLineDelimitedDecoder checks the line decoder the same way; a returned line never holds a
// newline and never exceeds the limit.
func FuzzLineDelimitedDecoder(f *testing.F) {
	for _, seed := range vectorSeeds(f, "framing-line-delimited.json", "cases", "encode_cases") {
		f.Add(seed, uint(len(seed)/2))
	}
	f.Fuzz(func(t *testing.T, input []byte, split uint) {
		framing := LineDelimitedFraming{MaxLineLength: 16}
		checkChunkingInvariance(t, framing, input, split, false)
		dec := framing.NewDecoder()
		dec.Feed(input)
		dec.FeedEOF()
		for {
			line, err := dec.Next()
			var fe *FramingError
			if errors.As(err, &fe) {
				continue
			}
			if err != nil {
				break
			}
			if bytes.IndexByte(line, '\n') >= 0 || len(line) > 16 || len(line) == 0 {
				t.Fatalf("bad line %q", line)
			}
		}
	})
}

func checkChunkingInvariance(t *testing.T, framing Framing, input []byte, split uint, fatal bool) {
	whole := feedDecoder(framing.NewDecoder(), [][]byte{input}, true, fatal)
	at := int(split % uint(len(input)+1))
	parts := feedDecoder(framing.NewDecoder(), [][]byte{input[:at], input[at:]}, true, fatal)
	if !reflect.DeepEqual(whole, parts) {
		t.Fatalf("split at %d: %v, whole: %v", at, parts, whole)
	}
}

// FuzzMessagePackDecode checks that the strict decoder never panics and that whatever it accepts
// re-encodes to bytes that decode to the same value (and re-encode to the same bytes).
func FuzzMessagePackDecode(f *testing.F) {
	for _, seed := range vectorSeeds(f, "codec-msgpack.json", "cases", "decode_cases", "error_cases") {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		codec := MessagePackCodec{}
		value, err := codec.Decode(input)
		if err != nil {
			var ce *CodecError
			if !errors.As(err, &ce) {
				t.Fatalf("decode failed with %T, want *CodecError: %v", err, err)
			}
			return
		}
		encoded, err := codec.Encode(value)
		if err != nil {
			t.Fatalf("re-encoding %#v: %v", value, err)
		}
		again, err := codec.Decode(encoded)
		if err != nil || !sameValue(value, again) {
			t.Fatalf("round trip: %#v became %#v (%v)", value, again, err)
		}
		if reencoded, _ := codec.Encode(again); !bytes.Equal(reencoded, encoded) {
			t.Fatalf("encoding is not stable: %x then %x", encoded, reencoded)
		}
		// The same message classified must not panic either.
		_ = JSONRPCProtocol{}.Classify(value)
		// A response carrying the value is written without its map exactly as with it.
		checkWireResponse(t, IntID(int64(len(input))), value)
	})
}
