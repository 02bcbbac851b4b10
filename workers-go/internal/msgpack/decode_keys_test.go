package msgpack

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

func encodeForTest(t *testing.T, v any) []byte {
	t.Helper()
	e := Encoder{}
	if err := e.Encode(v, 0); err != nil {
		t.Fatal(err)
	}
	return e.Buf
}

// keysOf returns the keys of every map of an array of maps, in array order.
func keysOf(t *testing.T, v any) []string {
	t.Helper()
	var keys []string
	for _, item := range v.([]any) {
		for k := range item.(map[string]any) {
			keys = append(keys, k)
		}
	}
	return keys
}

// TestRepeatedKeysShareOneStringThatIsNotThePayload: a key repeated in every map of an array is
// made once per payload, and it is a copy: writing over the payload afterwards changes no key.
func TestRepeatedKeysShareOneStringThatIsNotThePayload(t *testing.T) {
	t.Parallel()
	items := make([]any, 100)
	for i := range items {
		items[i] = map[string]any{"value": float64(i) + 0.5}
	}
	payload := encodeForTest(t, items)
	v, err := Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	keys := keysOf(t, v)
	for _, k := range keys {
		if k != "value" || unsafe.StringData(k) != unsafe.StringData(keys[0]) {
			t.Fatalf("key %q at %p, want \"value\" at %p, the first map's", k, unsafe.StringData(k), unsafe.StringData(keys[0]))
		}
	}
	for i := range payload {
		payload[i] = 'X'
	}
	if keys := keysOf(t, v); keys[0] != "value" || keys[99] != "value" {
		t.Fatalf("keys changed with the payload: %q", keys)
	}
}

// TestKeysOfEveryKindDecodeAsWritten: many distinct keys (more than the cache holds, so that they
// evict each other), in maps that repeat them in turn; the empty key, keys of 32 and 33 bytes
// (either side of what is cached), non-ASCII keys, and keys that differ in one byte only.
func TestKeysOfEveryKindDecodeAsWritten(t *testing.T) {
	t.Parallel()
	names := []string{"", "a", "b", "ab", "ba", "é", "日本語", strings.Repeat("k", 32), strings.Repeat("k", 33),
		strings.Repeat("x", 31) + "1", strings.Repeat("x", 31) + "2", strings.Repeat("long", 40)}
	for i := 0; i < 200; i++ {
		names = append(names, fmt.Sprintf("key%d", i))
	}
	big := map[string]any{}
	for i, name := range names {
		big[name] = int64(i)
	}
	var items []any
	for i := 0; i < 50; i++ {
		m := map[string]any{}
		for j := 0; j < 40; j++ {
			name := names[(i*7+j*13)%len(names)]
			m[name] = name
		}
		items = append(items, m, map[string]any{"id": int64(i), "value": 1.5, "key1": "x"})
	}
	want := map[string]any{"big": big, "items": items}
	got, err := Decode(encodeForTest(t, want))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("decoded maps differ from the encoded ones")
	}
}

// TestKeyHeadersOfEveryWidthGiveTheSameKey: the same key as fixstr, str 8 and str 16, in one
// payload, is the same string (whichever reached the cache first).
func TestKeyHeadersOfEveryWidthGiveTheSameKey(t *testing.T) {
	t.Parallel()
	payload := []byte{0x93,
		0x81, 0xa2, 'i', 'x', 0x01,
		0x81, 0xd9, 2, 'i', 'x', 0x02,
		0x81, 0xda, 0, 2, 'i', 'x', 0x03,
	}
	v, err := Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{map[string]any{"ix": int64(1)}, map[string]any{"ix": int64(2)}, map[string]any{"ix": int64(3)}}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("got %#v, want %#v", v, want)
	}
}

// TestInvalidUTF8KeyIsRefusedEveryTime: a key that is not UTF-8 is refused in the first map that
// has it and in a later one, after valid keys have filled the cache, whatever the header width.
func TestInvalidUTF8KeyIsRefusedEveryTime(t *testing.T) {
	t.Parallel()
	valid := []byte{0x81, 0xa2, 'a', 'b', 0x01}
	for _, bad := range [][]byte{
		{0x81, 0xa2, 'a', 0xff, 0x01},
		{0x81, 0xd9, 2, 'a', 0xff, 0x01},
		{0x81, 0xa1, 0x80, 0x01},
	} {
		for _, payload := range [][]byte{
			append([]byte{0x91}, bad...),
			append(append(append([]byte{0x93}, valid...), valid...), bad...),
			append(append([]byte{0x92}, bad...), bad...),
		} {
			_, err := Decode(payload)
			if e, ok := err.(*Error); !ok || e.Structural || !strings.Contains(e.Msg, "UTF-8") {
				t.Errorf("%x: got %v, want the invalid UTF-8 mapping error", payload, err)
			}
		}
	}
}

// TestConcurrentDecodesShareNothing: decodes of different payloads at the same time, each with
// keys and numbers of its own, each give their own value (run with -race).
func TestConcurrentDecodesShareNothing(t *testing.T) {
	t.Parallel()
	const workers = 8
	payloads, wants := make([][]byte, workers), make([]any, workers)
	for w := range payloads {
		items := make([]any, 300)
		for i := range items {
			items[i] = map[string]any{"id": int64(i * (w + 1) * 1000), "value": float64(i) / float64(w+1), fmt.Sprintf("w%d", w): int64(-w - 1000)}
		}
		wants[w] = map[string]any{"items": items, "worker": int64(w)}
		payloads[w] = encodeForTest(t, wants[w])
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for round := 0; round < 50; round++ {
				got, err := Decode(payloads[w])
				if err != nil {
					errs <- err
					return
				}
				if !reflect.DeepEqual(got, wants[w]) {
					errs <- fmt.Errorf("worker %d round %d: decoded value differs", w, round)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
