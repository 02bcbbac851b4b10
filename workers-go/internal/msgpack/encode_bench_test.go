package msgpack

import "testing"

// Encoding the values of an ordinary result: generic maps, and structs whose fields have named
// types (the types that are looked at for an encoding of their own, and have none).

type benchID int64

type benchLabel string

type benchTags []string

type benchTyped struct {
	ID    benchID          `json:"id"`
	Label benchLabel       `json:"label"`
	Tags  benchTags        `json:"tags"`
	Score *float64         `json:"score"`
	Attrs map[string]int64 `json:"attrs"`
	Child *benchItem       `json:"child"`
}

func BenchmarkEncodeOrdinary(b *testing.B) {
	score := 0.5
	typed := make([]benchTyped, 100)
	generic := make([]any, 100)
	for i := range typed {
		typed[i] = benchTyped{ID: benchID(i), Label: "row", Tags: benchTags{"a", "b"}, Score: &score,
			Attrs: map[string]int64{"x": 1}, Child: &benchItem{ID: int64(i), Label: "c"}}
		generic[i] = map[string]any{"id": int64(i), "label": "row", "tags": []any{"a", "b"}, "score": score}
	}
	for _, s := range []struct {
		name  string
		value any
	}{{"generic", map[string]any{"rows": generic}}, {"typed", map[string]any{"rows": typed}}} {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for i := 0; i < b.N; i++ {
				e := Encoder{Buf: buf[:0]}
				if err := e.Encode(s.value, 0); err != nil {
					b.Fatal(err)
				}
				buf = e.Buf
			}
		})
	}
}
