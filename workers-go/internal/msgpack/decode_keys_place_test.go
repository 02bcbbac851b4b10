package msgpack

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// orderedMaps writes an array of maps, each with its keys in the order given (the Encoder sorts
// them), the value of every key its map's index; it returns the payload and the value it decodes to.
// The keys of maps at even indexes are fixstr when short enough, the others str 8.
func orderedMaps(maps [][]string) ([]byte, []any) {
	payload := []byte{0xdc, byte(len(maps) >> 8), byte(len(maps))}
	want := make([]any, len(maps))
	for i, keys := range maps {
		payload = append(payload, 0xde, byte(len(keys)>>8), byte(len(keys)))
		m := map[string]any{}
		for _, k := range keys {
			if i%2 == 0 && len(k) < 32 {
				payload = append(payload, 0xa0|byte(len(k)))
			} else {
				payload = append(payload, 0xd9, byte(len(k)))
			}
			payload = append(payload, k...)
			payload = append(payload, 0xcd, byte(i>>8), byte(i))
			m[k] = int64(i)
		}
		want[i] = m
	}
	return payload, want
}

// TestKeysAtTheSamePlaceDecodeAsWritten: successive maps whose key at a given place is the one
// the map before had there (the first thing the cache tries), or differs from it in one byte, in
// length only, in case, or is an envelope name, the empty key, a non-ASCII or a long key; the same
// keys in another order; maps wider than the places remembered.
func TestKeysAtTheSamePlaceDecodeAsWritten(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", 33)
	wide := make([]string, 12)
	for i := range wide {
		wide[i] = fmt.Sprintf("w%d", i)
	}
	maps := [][]string{ // an odd number, so that the second round has the other key headers
		{"id", "value"}, {"id", "value"}, {"id", "valuf"}, {"id", "valu"}, {"id", "values"},
		{"ID", "Value"}, {"value", "id"}, {"id", "value"}, {"data", ""}, {"", "data"}, {"é", "e"},
		{"e", "é"}, {long, "value"}, {long, "value"}, {"value", long}, {"value", long + "é"},
		{"id"}, {}, {"id", "value", "x"}, {"x", "id", "value"}, wide,
		append(append([]string{}, wide[6:]...), wide[:6]...), wide[:9],
		{"w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "w9", "w8"}, {"id", "value"},
	}
	payload, want := orderedMaps(append(maps, maps...))
	got, err := Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// TestInvalidUTF8KeyAtARememberedPlaceIsRefused: a key that is not UTF-8, short or long, at a
// place where the maps before had a valid key of the same length or one sharing its first bytes,
// is refused.
func TestInvalidUTF8KeyAtARememberedPlaceIsRefused(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", 40)
	for _, bad := range []string{"a\xff", "\xffb", "ab\xc3", "\xc3", long[:39] + "\xff", long + "\xc3"} {
		payload, _ := orderedMaps([][]string{{"ab"}, {"ab", "ab\xc3\xa9"}, {long}, {long}, {bad}})
		_, err := Decode(payload)
		if e, ok := err.(*Error); !ok || e.Structural || !strings.Contains(e.Msg, "UTF-8") {
			t.Errorf("key %q: got %v, want the invalid UTF-8 mapping error", bad, err)
		}
	}
}
