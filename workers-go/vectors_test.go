package aspectipc

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// vectorsDir is the shared test vectors (spec/vectors): every SDK runs every case.
const vectorsDir = "../spec/vectors"

// TestVectors runs every case of every file in spec/vectors.
func TestVectors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(vectorsDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vector files in %s: %v", vectorsDir, err)
	}
	runners := map[string]func(*testing.T, map[string]any){
		"framing.length_prefixed": runLengthPrefixedVectors,
		"framing.line_delimited":  runLineDelimitedVectors,
		"codec.msgpack":           runMessagePackVectors,
		"codec.json":              runJSONVectors,
		"jsonrpc":                 runJSONRPCVectors,
		"paths":                   runPathVectors,
		"handshake":               runHandshakeVectors,
		"environment":             runEnvironmentVectors,
		"streams":                 runStreamVectors,
	}
	seen := map[string]bool{}
	for _, file := range files {
		doc := loadVectorFile(t, file)
		layer, _ := doc["layer"].(string)
		run, ok := runners[layer]
		if !ok {
			t.Errorf("%s: unknown layer %q: the loader must run every file", file, layer)
			continue
		}
		seen[layer] = true
		t.Run(filepath.Base(file), func(t *testing.T) { run(t, doc) })
	}
	for layer := range runners {
		if !seen[layer] {
			t.Errorf("no vector file for layer %s", layer)
		}
	}
}

func loadVectorFile(t testing.TB, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc
}

func cases(doc map[string]any, key string) []map[string]any {
	list, _ := doc[key].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, c := range list {
		out = append(out, c.(map[string]any))
	}
	return out
}

func unhex(t testing.TB, v any) []byte {
	t.Helper()
	s, _ := v.(string)
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func intOf(v any, def int64) int64 {
	if n, ok := v.(json.Number); ok {
		i, _ := n.Int64()
		return i
	}
	return def
}

// tagged converts a vector value (README "Tagged values") to the Go value the SDK uses.
func tagged(t testing.TB, v any) any {
	t.Helper()
	switch x := v.(type) {
	case json.Number:
		i, err := x.Int64()
		if err != nil {
			t.Fatalf("plain number %s is not an integer", x)
		}
		return i
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = tagged(t, e)
		}
		return out
	case map[string]any:
		if len(x) == 1 {
			if s, ok := x["$int"].(string); ok {
				b, _ := new(big.Int).SetString(s, 10)
				switch {
				case b.IsInt64():
					return b.Int64()
				case b.IsUint64():
					return b.Uint64()
				}
				return b
			}
			if f, ok := x["$float"]; ok {
				switch f := f.(type) {
				case json.Number:
					v, _ := f.Float64()
					if v == 0 && strings.HasPrefix(string(f), "-") {
						return math.Copysign(0, -1)
					}
					return v
				case string:
					switch f {
					case "NaN":
						return math.NaN()
					case "Infinity":
						return math.Inf(1)
					case "-Infinity":
						return math.Inf(-1)
					}
				}
				t.Fatalf("bad $float %v", f)
			}
			if s, ok := x["$bin"]; ok {
				return unhex(t, s)
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = tagged(t, e)
		}
		return out
	}
	return v
}

// sameValue compares decoded values structurally: integers by value, floats by value (NaN equals
// NaN, -0.0 only equals -0.0), binary by bytes, maps without regard to order.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		if !ok {
			return false
		}
		if math.IsNaN(x) || math.IsNaN(y) {
			return math.IsNaN(x) && math.IsNaN(y)
		}
		return x == y && math.Signbit(x) == math.Signbit(y)
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	}
	if ia, ok := integerOf(a); ok && a != nil {
		if _, isBool := a.(bool); !isBool {
			ib, ok := integerOf(b)
			return ok && ia == ib
		}
	}
	return reflect.DeepEqual(a, b)
}

// sameNumber compares an integer and a float by numeric value.
func sameNumber(a, b any) bool {
	fa, okA := asFloat(a)
	fb, okB := asFloat(b)
	return okA && okB && fa == fb
}

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}
