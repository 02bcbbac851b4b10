package aspectipc

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// Maps whose keys are not strings have no form on either channel (PROTOCOL.md 3.2): the JSON
// codec refuses them as the MessagePack codec does, although encoding/json would write integer
// and TextMarshaler keys as text, and gives them to the encode hook when there is one.

// label is a named string type: a valid key.
type label string

// textKey is an integer key that encoding/json would write as its text.
type textKey int

func (k textKey) MarshalText() ([]byte, error) { return []byte(fmt.Sprintf("k%d", int(k))), nil }

// textLabel is a string key with MarshalText: a string all the same, written as itself.
type textLabel string

func (textLabel) MarshalText() ([]byte, error) { return []byte("never used"), nil }

type keyedRecord struct {
	M map[int]int `json:"m"`
	N int         `json:"n"`
}

func TestJSONCodecRefusesMapKeysThatAreNotStrings(t *testing.T) {
	t.Parallel()
	const advice = " (convert the map to one with string keys first, or set EncodeHook on JSONCodec)"
	for _, c := range []struct {
		name       string
		value      any
		path, text string
	}{
		{"int keys", map[int]string{1: "a"}, "$", "map key 1 at $ is int: keys must be strings"},
		{"in a result", JSONRPCProtocol{}.Response(IntID(1), map[int]string{1: "a"}), "$.result", "map key 1 at $.result is int: keys must be strings"},
		{"in a generic map", map[string]any{"counts": map[uint8]bool{7: true}}, "$.counts", "map key 7 at $.counts is uint8: keys must be strings"},
		{"in a struct", map[string]any{"r": keyedRecord{M: map[int]int{2: 3}}}, "$.r.m", "map key 2 at $.r.m is int: keys must be strings"},
		{"in a typed slice", []map[int64]string{{-5: "x"}}, "$[0]", "map key -5 at $[0] is int64: keys must be strings"},
		{"TextMarshaler keys", map[textKey]int{3: 1}, "$", "map key 3 at $ is aspectipc.textKey: keys must be strings"},
		{"float keys", map[float64]string{1.5: "x"}, "$", "map key 1.5 at $ is float64: keys must be strings"},
		{"interface keys", map[any]int{4: 1}, "$", "map key 4 at $ is int: keys must be strings"},
		{"empty", map[int]string{}, "$", "map at $ has keys of type int: keys must be strings"},
		{"nil", map[string]any{"m": map[int]string(nil)}, "$.m", "map at $.m has keys of type int: keys must be strings"},
	} {
		out, err := JSONCodec{}.Encode(c.value)
		var ce *CodecError
		if !errors.As(err, &ce) || out != nil || ce.Codec != "json" || ce.Path != c.path || err.Error() != "json codec: "+c.text+advice {
			t.Errorf("%s: got %s, %v; want json codec: %s%s at %s", c.name, out, err, c.text, advice, c.path)
			continue
		}
		_, mpErr := MessagePackCodec{}.Encode(c.value)
		var mp *CodecError
		if !errors.As(mpErr, &mp) || mp.Path != ce.Path || mp.Message != strings.Replace(ce.Message, "JSONCodec", "MessagePackCodec", 1) {
			t.Errorf("%s: the MessagePack codec says %v, the JSON codec %v", c.name, mpErr, err)
		}
	}
}

func TestJSONCodecWritesMapsWithStringKindKeys(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		value any
		want  string
	}{
		{map[label]int{"b": 2, "a": 1}, `{"a":1,"b":2}`},
		{map[textLabel]int{"x": 1}, `{"x":1}`}, // a string kind is its own text, as in encoding/json
		{map[string]any{"m": map[label][]int{"k": {1}}}, `{"m":{"k":[1]}}`},
		{[]map[string]bool{{"t": true}}, `[{"t":true}]`},
	} {
		out, err := JSONCodec{}.Encode(c.value)
		if err != nil || string(out) != c.want {
			t.Errorf("%#v: got %s, %v; want %s", c.value, out, err, c.want)
		}
	}
}

// asPairs is an encode hook that writes a map with keys that are not strings as a list of
// [key, value] pairs sorted by key text, and notes the types it was given.
func asPairs(seen *[]string) func(any) (any, error) {
	return func(v any) (any, error) {
		m := reflect.ValueOf(v)
		if m.Kind() != reflect.Map {
			return nil, fmt.Errorf("no form for %T", v)
		}
		*seen = append(*seen, m.Type().String())
		pairs := []any{}
		for iter := m.MapRange(); iter.Next(); {
			pairs = append(pairs, []any{iter.Key().Interface(), iter.Value().Interface()})
		}
		sort.Slice(pairs, func(i, j int) bool {
			return fmt.Sprint(pairs[i].([]any)[0]) < fmt.Sprint(pairs[j].([]any)[0])
		})
		return pairs, nil
	}
}

func TestJSONEncodeHookGetsMapsWithKeysThatAreNotStrings(t *testing.T) {
	t.Parallel()
	value := []any{
		map[int]string{1: "a"},
		keyedRecord{M: map[int]int{2: 3}, N: 1},
		[]map[uint8]bool{{7: true}},
		map[label]int{"s": 1}, // string keys: no hook
	}
	var seen []string
	out, err := JSONCodec{EncodeHook: asPairs(&seen)}.Encode(value)
	want := `[[[1,"a"]],{"m":[[2,3]],"n":1},[[[7,true]]],{"s":1}]`
	if err != nil || string(out) != want {
		t.Fatalf("got %s, %v\nwant %s", out, err, want)
	}
	if got := strings.Join(seen, " "); got != "map[int]string map[int]int map[uint8]bool" {
		t.Fatalf("the hook was given %s", got)
	}
	// The same values as the MessagePack codec writes with the same hook.
	var mpSeen []string
	payload, err := MessagePackCodec{EncodeHook: asPairs(&mpSeen)}.Encode(value)
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err1 := JSONCodec{}.Decode(out)
	fromMsgpack, err2 := MessagePackCodec{}.Decode(payload)
	if err1 != nil || err2 != nil || !reflect.DeepEqual(fromJSON, fromMsgpack) || !reflect.DeepEqual(seen, mpSeen) {
		t.Fatalf("json %#v (%v, hook given %v), msgpack %#v (%v, hook given %v)", fromJSON, err1, seen, fromMsgpack, err2, mpSeen)
	}
}

func TestEncodeHookErrorOnAMapWithIntegerKeysNamesThePlace(t *testing.T) {
	t.Parallel()
	sentinel := errors.New("no thanks")
	hook := func(any) (any, error) { return nil, sentinel }
	msg := JSONRPCProtocol{}.Request(IntID(1), "m", map[string]any{"counts": map[int]string{1: "a"}})
	for _, codec := range []Codec{MessagePackCodec{EncodeHook: hook}, JSONCodec{EncodeHook: hook}} {
		_, err := codec.Encode(msg)
		var ce *CodecError
		if !errors.As(err, &ce) || ce.Path != "$.params.counts" || !errors.Is(err, sentinel) ||
			ce.Message != "encode hook failed on map[int]string at $.params.counts: no thanks" {
			t.Errorf("%s: %v", codec.Name(), err)
		}
	}
}

// A handler's result with integer keys is answered -32603 on both channels, naming the key.
func TestResultWithIntegerKeysIsAnsweredInternalError(t *testing.T) {
	t.Parallel()
	for _, c := range bothCodecs {
		handlers := HandlerTable{"counts": func(context.Context, Params) (any, error) { return map[int]string{1: "a"}, nil }}
		client, _ := channelPair(t, c.framing, c.codec, nil, handlers)
		result, err := client.Request(context.Background(), "counts", nil)
		codecType := map[string]string{"json": "JSONCodec", "msgpack": "MessagePackCodec"}[c.name]
		want := "Internal error: the result cannot be encoded: " + c.name + " codec: map key 1 at $.result is int: keys must be strings" +
			" (convert the map to one with string keys first, or set EncodeHook on " + codecType + ")"
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeInternalError || e.Message != want {
			t.Errorf("%s: got %#v, %v; want -32603 %q", c.name, result.Value(), err, want)
		}
	}
}
