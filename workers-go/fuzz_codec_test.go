package aspectipc

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/msgpack"
)

// Fuzz targets for the spec 1.1 codec paths: the JSON scan, syntax check and writer, and the id
// recovery of both codecs.

func FuzzJSONDecode(f *testing.F) {
	for _, seed := range vectorSeeds(f, "codec-json.json", "decode_cases", "error_cases", "encode_cases") {
		f.Add(seed)
	}
	for _, seed := range vectorSeeds(f, "jsonrpc.json", "wire_cases") {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		if json.Valid(input) && !validJSON(input) {
			t.Fatalf("encoding/json accepts %q, validJSON does not", input)
		}
		codec := JSONCodec{}
		value, err := codec.Decode(input)
		if err != nil {
			var ce *CodecError
			if !errors.As(err, &ce) {
				t.Fatalf("decode failed with %T: %v", err, err)
			}
			_ = parseErrorID(codec, input, err) // must not panic
			return
		}
		if !validJSON(input) {
			t.Fatalf("decoded %q, which validJSON refuses", input)
		}
		// On text that decodes, recovery reads the top level as the decoder does.
		env, read := codec.recoverEnvelope(input)
		if m, isMap := value.(map[string]any); isMap {
			_, hasMethod := m["method"]
			_, hasResult := m["result"]
			_, hasError := m["error"]
			wantID, idOK := idOf(m["id"])
			if !read || env.hasMethod != hasMethod || env.hasAnswer != (hasResult || hasError) ||
				env.idOK != idOK || idOK && env.id != wantID {
				t.Fatalf("recovered %+v (%v) from %q, which decodes to %v", env, read, input, m)
			}
		} else if read {
			t.Fatalf("recovered %+v from a non-object %q", env, input)
		}
		out, err := codec.Encode(value)
		if err != nil {
			t.Fatalf("cannot re-encode %#v: %v", value, err)
		}
		again, err := codec.Decode(out)
		if err != nil || !sameValue(again, value) {
			t.Fatalf("%q re-encoded as %q reads back as %#v, %v", input, out, again, err)
		}
	})
}

func FuzzMessagePackRecoverID(f *testing.F) {
	for _, seed := range vectorSeeds(f, "codec-msgpack.json", "cases", "decode_cases", "error_cases") {
		f.Add(seed)
	}
	for _, seed := range vectorSeeds(f, "jsonrpc.json", "wire_cases") {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		codec := MessagePackCodec{}
		value, err := codec.Decode(input)
		env, read := codec.recoverEnvelope(input)
		if err != nil {
			return
		}
		// On a payload that decodes, recovery finds what classification finds.
		msg := JSONRPCProtocol{}.Classify(value)
		id := env.requestID()
		ok := !id.IsNull()
		if m, isMap := value.(map[string]any); isMap {
			_, methodIsString := m["method"].(string)
			wantID, idOK := idOf(m["id"])
			if ok != (idOK && methodIsString) || ok && id != wantID {
				t.Fatalf("recovered %v (%v) from %x, classified %v", id, ok, input, msg)
			}
			_, hasMethod := m["method"]
			_, hasResult := m["result"]
			_, hasError := m["error"]
			if !read || env.hasMethod != hasMethod || env.hasAnswer != (hasResult || hasError) {
				t.Fatalf("recovered %+v (%v) from %x, which decodes to %v", env, read, input, m)
			}
		} else if read {
			t.Fatalf("recovered %+v from a non-map %x", env, input)
		}
		n, skipErr := msgpack.Skip(input)
		if skipErr != nil || n != len(input) {
			t.Fatalf("skip stopped at %d of %d in %x: %v", n, len(input), input, skipErr)
		}
	})
}
