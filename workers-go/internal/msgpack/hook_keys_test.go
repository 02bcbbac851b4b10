package msgpack

import (
	"errors"
	"math/rand"
	"testing"
)

// recordingHook is a hook for the maps holding "x": it replaces those whose "x" is null, fails
// on those whose "x" is "12", and counts its calls.
func recordingHook(calls *int) DecodeHook {
	return func(m map[string]any) (any, error) {
		*calls++
		if v, ok := m["x"]; ok && v == nil {
			return "replaced", nil
		}
		if m["x"] == "12" {
			return nil, errors.New("x is 12")
		}
		return m, nil
	}
}

// TestDecodeLazyHookedIsDecodeHooked: with hook keys, DecodeLazyHooked accepts and refuses what
// DecodeHooked does, with the same error, the same value and the same hook calls; params that
// hold a map with a hook key are decoded at once, the others left lazy.
func TestDecodeLazyHookedIsDecodeHooked(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	for i := 0; i < 20000; i++ {
		payload := envelope(genObject(r, nil, 0))
		if i%3 == 0 {
			payload = mutate(r, payload)
		}
		compareHooked(t, payload)
	}
}

func FuzzDecodeLazyHooked(f *testing.F) {
	r := rand.New(rand.NewSource(7))
	for i := 0; i < 30; i++ {
		f.Add(envelope(genObject(r, nil, 0)))
	}
	f.Fuzz(compareHooked)
}

func compareHooked(t *testing.T, payload []byte) {
	t.Helper()
	keys := []string{"x"}
	var wantCalls, calls int
	want, wantErr := DecodeHooked(payload, recordingHook(&wantCalls), keys)
	got, err := DecodeLazyHooked(payload, "params", "", recordingHook(&calls), keys)
	// (A payload refused for its bytes may have had some maps hooked before, or not.)
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() || err == nil && calls != wantCalls {
		t.Fatalf("%x: DecodeHooked: %v after %d calls, DecodeLazyHooked: %v after %d", payload, wantErr, wantCalls, err, calls)
	}
	m, ok := got.(map[string]any)
	if err != nil || !ok {
		return
	}
	if lazy, ok := m["params"].(*Lazy); ok {
		if refHasKey(lazy.Raw, "x") {
			t.Fatalf("%x: params holding a hook key were left lazy", payload)
		}
		m["params"] = lazy.Value()
	}
	if !equalGeneric(want, got) {
		t.Fatalf("%x: DecodeLazyHooked reads %#v, DecodeHooked %#v", payload, got, want)
	}
}

// refHasKey reports whether a map of valid data holds key, at any depth.
func refHasKey(data []byte, key string) bool {
	v, _ := Decode(data)
	var walk func(any) bool
	walk = func(v any) bool {
		switch x := v.(type) {
		case []any:
			for _, item := range x {
				if walk(item) {
					return true
				}
			}
		case map[string]any:
			if _, ok := x[key]; ok {
				return true
			}
			for _, item := range x {
				if walk(item) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
}
