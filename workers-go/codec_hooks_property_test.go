package aspectipc

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand"
	"regexp"
	"testing"
)

// The property behind CodecError.Path: whatever value holds a value that cannot be encoded, the
// error names the place where it was put; and with an encode hook, the bytes are those of the
// value with the hook's replacement put there instead.

var pathKeys = []string{"a", "rows", "_1", "a b", "é", `q"`, "", "when"}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// valueWithPoison builds a random generic value from r with leaf at one place, and that place.
func valueWithPoison(r *rand.Rand, leaf any, depth int) (any, string) {
	if depth == 0 || r.Intn(4) == 0 {
		return leaf, "$"
	}
	if r.Intn(2) == 0 {
		list := make([]any, 1+r.Intn(4))
		at := r.Intn(len(list))
		var inner any
		var path string
		for i := range list {
			if i == at {
				inner, path = valueWithPoison(r, leaf, depth-1)
				list[i] = inner
			} else {
				list[i] = int64(r.Intn(1000))
			}
		}
		return list, "$[" + itoa(at) + "]" + path[1:]
	}
	m := map[string]any{}
	key := pathKeys[r.Intn(len(pathKeys))]
	for _, k := range pathKeys[:r.Intn(len(pathKeys))] {
		m[k] = "x"
	}
	inner, path := valueWithPoison(r, leaf, depth-1)
	m[key] = inner
	segment := "." + key
	if !identifier.MatchString(key) {
		quoted, _ := json.Marshal(key)
		segment = "[" + string(quoted) + "]"
	}
	return m, "$" + segment + path[1:]
}

func checkPathProperty(t *testing.T, seed int64) {
	r := rand.New(rand.NewSource(seed))
	depth := r.Intn(8)
	value, path := valueWithPoison(rand.New(rand.NewSource(seed)), complex(1, 1), depth)
	for _, codec := range []Codec{MessagePackCodec{}, JSONCodec{}} {
		_, err := codec.Encode(value)
		var ce *CodecError
		if !errors.As(err, &ce) || ce.Path != path {
			t.Fatalf("seed %d, %s: %v, want the place %s", seed, codec.Name(), err, path)
		}
	}
	replaced, _ := valueWithPoison(rand.New(rand.NewSource(seed)), "re", depth)
	hook := func(any) (any, error) { return "re", nil }
	for _, pair := range [][2]Codec{{MessagePackCodec{EncodeHook: hook}, MessagePackCodec{}}, {JSONCodec{EncodeHook: hook}, JSONCodec{}}} {
		got, err := pair[0].Encode(value)
		want, wantErr := pair[1].Encode(replaced)
		if err != nil || wantErr != nil || !bytes.Equal(got, want) {
			t.Fatalf("seed %d, %s with a hook: %q, %v; want %q, %v", seed, pair[0].Name(), got, err, want, wantErr)
		}
	}
}

func TestCodecErrorPathProperty(t *testing.T) {
	for seed := int64(0); seed < 2000; seed++ {
		checkPathProperty(t, seed)
	}
}

func FuzzCodecErrorPath(f *testing.F) {
	for _, seed := range []int64{0, 1, 42, -7} {
		f.Add(seed)
	}
	f.Fuzz(checkPathProperty)
}
