package aspectipc

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

// The runners of TestVectors, one per layer.

// ---- framing -------------------------------------------------------------------------------

type frameEvent struct {
	frame string // hex
	err   string // error kind
}

func expectedEvents(c map[string]any) []frameEvent {
	var out []frameEvent
	for _, e := range c["events"].([]any) {
		m := e.(map[string]any)
		if f, ok := m["frame"].(string); ok {
			out = append(out, frameEvent{frame: f})
		} else {
			out = append(out, frameEvent{err: m["error"].(string)})
		}
	}
	return out
}

// feedDecoder feeds chunks to dec, then EOF if eof, and collects its events. After a fatal
// (length-prefixed) error nothing more is read.
func feedDecoder(dec FrameDecoder, chunks [][]byte, eof bool, fatalErrors bool) []frameEvent {
	var events []frameEvent
	dead := false
	collect := func() {
		for !dead {
			frame, err := dec.Next()
			if err == nil {
				events = append(events, frameEvent{frame: hex.EncodeToString(frame)})
				continue
			}
			var fe *FramingError
			if errors.As(err, &fe) {
				events = append(events, frameEvent{err: string(fe.Kind)})
				if fatalErrors {
					dead = true
				}
				continue
			}
			return // ErrIncomplete or io.EOF
		}
	}
	for _, c := range chunks {
		dec.Feed(c)
		collect()
	}
	if eof {
		dec.FeedEOF()
		collect()
	}
	return events
}

// chunkings returns the ways every decoder case is fed: whole, split at every position, and one
// byte at a time.
func chunkings(input []byte) map[string][][]byte {
	out := map[string][][]byte{"whole": {input}}
	for i := 0; i <= len(input); i++ {
		out["split-"+itoa(i)] = [][]byte{input[:i], input[i:]}
	}
	bytewise := make([][]byte, len(input))
	for i := range input {
		bytewise[i] = input[i : i+1]
	}
	out["bytewise"] = bytewise
	return out
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }

func runFramingVectors(t *testing.T, doc map[string]any, limitKey string, framing func(limit int64) Framing, fatal bool) {
	defaultLimit := intOf(doc[limitKey], 0)
	for _, c := range cases(doc, "cases") {
		c := c
		t.Run(c["id"].(string), func(t *testing.T) {
			f := framing(intOf(c[limitKey], defaultLimit))
			input := unhex(t, c["input"])
			want := expectedEvents(c)
			eof, _ := c["eof"].(bool)
			for name, chunks := range chunkings(input) {
				got := feedDecoder(f.NewDecoder(), chunks, eof, fatal)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: events %v, want %v", name, got, want)
				}
			}
		})
	}
	for _, c := range cases(doc, "encode_cases") {
		c := c
		t.Run(c["id"].(string), func(t *testing.T) {
			f := framing(intOf(c[limitKey], defaultLimit))
			out, err := f.Encode(unhex(t, c["payload"]))
			if kind, ok := c["error"].(string); ok {
				var fe *FramingError
				if !errors.As(err, &fe) || string(fe.Kind) != kind || out != nil {
					t.Fatalf("got %x, %v; want framing error %s", out, err, kind)
				}
				return
			}
			if err != nil || hex.EncodeToString(out) != c["output"] {
				t.Fatalf("got %x, %v; want %s", out, err, c["output"])
			}
		})
	}
}

func runLengthPrefixedVectors(t *testing.T, doc map[string]any) {
	runFramingVectors(t, doc, "max_frame_size", func(limit int64) Framing {
		return LengthPrefixedFraming{MaxFrameSize: limit}
	}, true)
}

func runLineDelimitedVectors(t *testing.T, doc map[string]any) {
	runFramingVectors(t, doc, "max_line_length", func(limit int64) Framing {
		return LineDelimitedFraming{MaxLineLength: limit}
	}, false)
}

// ---- codecs --------------------------------------------------------------------------------

func runCodecVectors(t *testing.T, doc map[string]any, codec Codec) {
	for _, key := range []string{"cases", "encode_cases"} {
		for _, c := range cases(doc, key) {
			c := c
			t.Run(c["id"].(string), func(t *testing.T) {
				value := tagged(t, c["value"])
				var encodings []string
				for _, e := range c["encodings"].([]any) {
					encodings = append(encodings, e.(string))
				}
				out, err := codec.Encode(value)
				if err != nil {
					t.Fatalf("encode: %v", err)
				}
				if !contains(encodings, hex.EncodeToString(out)) {
					t.Fatalf("encode: got %x, want one of %v", out, encodings)
				}
				if key == "encode_cases" {
					return // JSON encode cases only fix the encoder
				}
				for i, e := range encodings {
					got, err := codec.Decode(unhex(t, e))
					// The alternatives to the preferred encoding are JavaScript's (an integral float
					// written as an integer): a generic decoder reads an integer there, which
					// receivers accept where a float is expected, so numbers compare by value.
					same := sameValue(got, value) || i > 0 && sameNumber(got, value)
					if err != nil || !same {
						t.Fatalf("decode %s: got %#v, %v; want %#v", e, got, err, value)
					}
				}
			})
		}
	}
	for _, c := range cases(doc, "decode_cases") {
		c := c
		t.Run(c["id"].(string), func(t *testing.T) {
			want := tagged(t, c["value"])
			got, err := codec.Decode(unhex(t, c["input"]))
			if err != nil || !sameValue(got, want) {
				t.Fatalf("got %#v, %v; want %#v", got, err, want)
			}
		})
	}
	for _, c := range cases(doc, "error_cases") {
		c := c
		t.Run(c["id"].(string), func(t *testing.T) {
			got, err := codec.Decode(unhex(t, c["input"]))
			var ce *CodecError
			if !errors.As(err, &ce) {
				t.Fatalf("got %#v, %v; want a codec error", got, err)
			}
		})
	}
	for _, c := range cases(doc, "encode_error_cases") {
		c := c
		t.Run(c["id"].(string), func(t *testing.T) {
			out, err := codec.Encode(tagged(t, c["value"]))
			var ce *CodecError
			if !errors.As(err, &ce) || out != nil {
				t.Fatalf("got %x, %v; want a codec error", out, err)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func runMessagePackVectors(t *testing.T, doc map[string]any) {
	runCodecVectors(t, doc, MessagePackCodec{})
}

func runJSONVectors(t *testing.T, doc map[string]any) { runCodecVectors(t, doc, JSONCodec{}) }

// ---- jsonrpc -------------------------------------------------------------------------------

func runJSONRPCVectors(t *testing.T, doc map[string]any) {
	for _, c := range cases(doc, "cases") {
		c := c
		t.Run(c["id"].(string), func(t *testing.T) {
			got := JSONRPCProtocol{}.Classify(tagged(t, c["message"]))
			checkClassification(t, got, tagged(t, c["expect"]).(map[string]any))
		})
	}
	runWireCases(t, cases(doc, "wire_cases"))
}

// checkClassification compares a classified message with a vector's expect.
func checkClassification(t *testing.T, got Message, want map[string]any) {
	t.Helper()
	if got.Kind.String() != want["kind"] {
		t.Fatalf("kind %s (%s), want %v", got.Kind, got.Reason, want["kind"])
	}
	if wantID, ok := want["id"]; ok {
		if !sameValue(got.ID.Value(), wantID) {
			t.Fatalf("id %v, want %v", got.ID, wantID)
		}
	}
	switch got.Kind {
	case KindRequest, KindNotification:
		if got.Method != want["method"] {
			t.Fatalf("method %q, want %v", got.Method, want["method"])
		}
		wantParams, has := want["params"]
		if got.HasParams != has || !sameValue(got.Params, wantParams) {
			t.Fatalf("params %#v (present %v), want %#v", got.Params, got.HasParams, wantParams)
		}
	case KindResponse:
		if !sameValue(got.Result, want["result"]) {
			t.Fatalf("result %#v, want %#v", got.Result, want["result"])
		}
	case KindErrorResponse:
		if int64(got.Error.Code) != want["code"] || got.Error.Message != want["message"] || !sameValue(got.Error.Data, want["data"]) {
			t.Fatalf("error %#v, want %v", got.Error, want)
		}
	case KindInvalid:
		if int64(got.InvalidCode) != want["code"] || got.Reply != want["reply"] {
			t.Fatalf("invalid code %d reply %v, want %v", got.InvalidCode, got.Reply, want)
		}
	}
}

// ---- paths ---------------------------------------------------------------------------------

func runPathVectors(t *testing.T, doc map[string]any) {
	for _, c := range cases(doc, "cases") {
		c := c
		t.Run(c["id"].(string), func(t *testing.T) {
			dir, _ := c["directory"].(string)
			p := PipePath{Directory: dir, Platform: c["platform"].(string)}
			got, err := p.ForModule(c["namespace"].(string), c["worker_id"].(string))
			if kind, ok := c["error"].(string); ok {
				if kind != "directory_too_long" || !errors.Is(err, ErrDirectoryTooLong) {
					t.Fatalf("got %q, %v; want error %s", got, err, kind)
				}
				return
			}
			if err != nil || got != c["path"] {
				t.Fatalf("got %q, %v; want %v", got, err, c["path"])
			}
		})
	}
	for _, c := range cases(doc, "empty_name_cases") {
		c := c
		t.Run(c["id"].(string), func(t *testing.T) {
			got, err := PipePath{}.ForModule(c["namespace"].(string), c["worker_id"].(string))
			if !errors.Is(err, ErrEmptyName) {
				t.Fatalf("got %q, %v; want ErrEmptyName", got, err)
			}
		})
	}
}

// vectorSeeds returns the inputs of the decoder cases of a vector file, for fuzz seeds.
func vectorSeeds(t testing.TB, file string, keys ...string) [][]byte {
	doc := loadVectorFile(t, filepath.Join(vectorsDir, file))
	var out [][]byte
	for _, key := range keys {
		for _, c := range cases(doc, key) {
			for _, field := range []string{"input", "payload", "output"} {
				if s, ok := c[field].(string); ok {
					out = append(out, unhex(t, s))
				}
			}
			if list, ok := c["encodings"].([]any); ok {
				for _, e := range list {
					out = append(out, unhex(t, e))
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i], out[j]) < 0 })
	return out
}
