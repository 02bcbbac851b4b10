package aspectipc

import (
	"errors"
	"strings"
	"testing"
)

// The runners of TestVectors for the rules above the codecs: bytes to verdict (jsonrpc.json
// wire_cases), the $/hello verdict (handshake.json) and the size variables (environment.json).

// runWireCases decodes each input with its codec: a failure must give the id of the -32700
// answer (recovered or null), a success the classification expected. Each input is decoded both
// by the codec's Decode and as the channel decodes it (decodeMessage: MessagePack params left
// undecoded), which must give the same error text.
func runWireCases(t *testing.T, list []map[string]any) {
	codecs := map[string]Codec{"json": JSONCodec{}, "msgpack": MessagePackCodec{}}
	for _, c := range list {
		c := c
		t.Run(c["id"].(string), func(t *testing.T) {
			codec := codecs[c["codec"].(string)]
			input := unhex(t, c["input"])
			want := tagged(t, c["expect"]).(map[string]any)
			value, err := codec.Decode(input)
			lazyValue, lazyErr := decodeMessage(codec, input)
			if (err == nil) != (lazyErr == nil) || err != nil && err.Error() != lazyErr.Error() {
				t.Fatalf("Decode fails with %v, decodeMessage with %v", err, lazyErr)
			}
			if want["kind"] == "parse_error" {
				if err == nil {
					t.Fatalf("decoded %#v, want a codec error", value)
				}
				if id := parseErrorID(codec, input, err); !sameValue(id.Value(), want["id"]) {
					t.Fatalf("-32700 id %v, want %v (error: %v)", id, want["id"], err)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			checkClassification(t, JSONRPCProtocol{}.Classify(value), want)
			msg := JSONRPCProtocol{}.Classify(lazyValue)
			msg.materialize()
			checkClassification(t, msg, want)
		})
	}
}

func runHandshakeVectors(t *testing.T, doc map[string]any) {
	token := doc["token"].(string)
	var supported []int64
	for _, v := range doc["supported"].([]any) {
		supported = append(supported, tagged(t, v).(int64))
	}
	if got := intOf(doc["pre_hello_max_frame_size"], 0); got != preHelloMaxFrameSize {
		t.Fatalf("pre_hello_max_frame_size %d, the SDK uses %d", got, preHelloMaxFrameSize)
	}
	for _, c := range cases(doc, "cases") {
		c := c
		t.Run(c["id"].(string), func(t *testing.T) {
			in := helloInput{token: []byte(token), supported: supported, workerID: doc["worker_id"].(string),
				pid: int(intOf(doc["pid"], 0)), authenticated: c["authenticated_elsewhere"] == true, later: c["first_frame"] == false}
			var presented string
			if c["undecodable"] == true {
				in.undecodable = true
			} else {
				msg := tagged(t, c["message"])
				in.msg = JSONRPCProtocol{}.Classify(msg)
				if m, ok := msg.(map[string]any); ok {
					if p, ok := m["params"].(map[string]any); ok {
						presented, _ = p["token"].(string)
					}
				}
			}
			got := decideHello(in)
			expect := c["expect"].(map[string]any)
			if got.keepOpen != expect["keep_open"] || got.accept != expect["authenticated"] {
				t.Fatalf("keep open %v, authenticated %v; want %v", got.keepOpen, got.accept, expect)
			}
			checkHelloReply(t, got, expect["reply"], token, presented)
		})
	}
	for _, c := range cases(doc, "frame_cases") {
		c := c
		t.Run(c["id"].(string), func(t *testing.T) {
			limit := intOf(c["max_frame_size"], 0)
			dec := LengthPrefixedFraming{MaxFrameSize: limit}.NewDecoder()
			dec.(frameLimiter).setFrameLimit(min(limit, preHelloMaxFrameSize))
			dec.Feed(unhex(t, c["header"]))
			_, err := dec.Next()
			var fe *FramingError
			switch c["expect"] {
			case "read":
				if !errors.Is(err, ErrIncomplete) {
					t.Fatalf("got %v, want to wait for the payload", err)
				}
			case "close":
				if !errors.As(err, &fe) {
					t.Fatalf("got %v, want a framing error", err)
				}
			}
		})
	}
}

// checkHelloReply compares a verdict's reply with the vector's: id and result equal, or the error
// code (and data when given); and the reply never holds a token.
func checkHelloReply(t *testing.T, got helloVerdict, reply any, tokens ...string) {
	t.Helper()
	if reply == nil {
		if !got.silent {
			t.Fatalf("replied %v %v, want no reply", got.result, got.err)
		}
		return
	}
	want := reply.(map[string]any)
	if got.silent || !sameValue(got.id.Value(), tagged(t, want["id"])) {
		t.Fatalf("reply id %v (silent %v), want %v", got.id, got.silent, want["id"])
	}
	var sent map[string]any
	if result, ok := want["result"]; ok {
		if got.err != nil || !sameValue(got.result, tagged(t, result)) {
			t.Fatalf("reply %v %v, want result %v", got.result, got.err, result)
		}
		sent = JSONRPCProtocol{}.Response(got.id, got.result)
	} else {
		e := want["error"].(map[string]any)
		if got.err == nil || int64(got.err.Code) != intOf(e["code"], 0) {
			t.Fatalf("reply %v %v, want error %v", got.result, got.err, e)
		}
		if data, ok := e["data"]; ok && !sameValue(got.err.Data, tagged(t, data)) {
			t.Fatalf("error data %v, want %v", got.err.Data, data)
		}
		sent = JSONRPCProtocol{}.ErrorResponse(got.id, got.err)
	}
	text, err := JSONCodec{}.Encode(sent)
	if err != nil {
		t.Fatal(err)
	}
	for _, token := range tokens {
		if token != "" && strings.Contains(strings.ToLower(string(text)), strings.ToLower(token)) {
			t.Fatalf("the reply holds a token: %s", text)
		}
	}
}

func runEnvironmentVectors(t *testing.T, doc map[string]any) {
	if intOf(doc["minimum"], 0) != minEnvLimit || intOf(doc["maximum"], 0) != maxEnvLimit {
		t.Fatalf("range [%v, %v], the SDK uses [%d, %d]", doc["minimum"], doc["maximum"], minEnvLimit, maxEnvLimit)
	}
	for _, c := range cases(doc, "cases") {
		c := c
		t.Run(c["id"].(string), func(t *testing.T) {
			raw, _ := c["value"].(string) // null: not set, which reads as ""
			got, err := sizeLimit(c["variable"].(string), raw)
			expect := c["expect"].(map[string]any)
			if expect["error"] == true {
				var se *StartupError
				if !errors.As(err, &se) || !strings.Contains(se.Message, c["variable"].(string)) {
					t.Fatalf("got %d, %v; want a start-up error naming the variable", got, err)
				}
				return
			}
			if err != nil || got != intOf(expect["limit"], 0) {
				t.Fatalf("got %d, %v; want %v", got, err, expect["limit"])
			}
		})
	}
	for _, c := range cases(doc, "tracebacks_cases") {
		c := c
		t.Run(c["id"].(string), func(t *testing.T) {
			raw, _ := c["value"].(string) // null: not set, which reads as ""
			off, err := tracebacksOff(raw)
			expect := c["expect"].(map[string]any)
			if expect["error"] == true {
				var se *StartupError
				if !errors.As(err, &se) || !strings.Contains(se.Message, EnvTracebacks) {
					t.Fatalf("got %v, %v; want a start-up error naming the variable", off, err)
				}
				return
			}
			if err != nil || off == (expect["send_traceback"] == true) {
				t.Fatalf("got off=%v, %v; want send_traceback %v", off, err, expect["send_traceback"])
			}
		})
	}
}
