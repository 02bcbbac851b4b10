package aspectipc

import "testing"

// TestDecodeHookKeys: with DecodeHookKeys, both codecs give the hook only the maps holding one
// of the keys; on the data channel, params holding none stay undecoded for Params.Decode.
func TestDecodeHookKeys(t *testing.T) {
	t.Parallel()
	calls := 0
	hook := func(m map[string]any) (any, error) {
		calls++
		return "tagged", nil
	}
	value := map[string]any{"a": map[string]any{"__t__": int64(1)}, "b": map[string]any{"c": int64(1)}}
	for _, codec := range []Codec{
		MessagePackCodec{DecodeHook: hook, DecodeHookKeys: []string{"__t__"}},
		JSONCodec{DecodeHook: hook, DecodeHookKeys: []string{"__t__"}},
	} {
		calls = 0
		payload, err := codec.Encode(value)
		if err != nil {
			t.Fatal(err)
		}
		got, err := codec.Decode(payload)
		m, _ := got.(map[string]any)
		if err != nil || calls != 1 || m["a"] != "tagged" || m["b"].(map[string]any)["c"] != int64(1) {
			t.Fatalf("%s: %#v, %v after %d calls; want only the tagged map hooked", codec.Name(), got, err, calls)
		}
	}
	codec := MessagePackCodec{DecodeHook: hook, DecodeHookKeys: []string{"__t__"}}
	for params, lazy := range map[string]bool{"a": false, "b": true} {
		payload, _ := codec.Encode(JSONRPCProtocol{}.Request(IntID(1), "m", map[string]any{params: value[params]}))
		v, err := decodeMessage(codec, payload)
		if err != nil {
			t.Fatal(err)
		}
		msg := JSONRPCProtocol{}.Classify(v)
		if (msg.lazy != nil) != lazy {
			t.Fatalf("params %v: lazy %v, want %v", params, msg.lazy != nil, lazy)
		}
		if want := map[string]any{params: value[params]}; !lazy {
			want[params] = "tagged"
			if !sameValue(msg.params().Value(), want) {
				t.Fatalf("params %v: %#v, want %#v", params, msg.params().Value(), want)
			}
		}
	}
}
