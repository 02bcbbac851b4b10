package msgpack

import (
	"bytes"
	"testing"

	vm "github.com/vmihailenco/msgpack/v5"
)

// The numbers that keep the codec the SDK's own: the same request decoded, and the same struct
// result encoded, by this package and by vmihailenco/msgpack (the reference of the fuzz tests).

type benchItem struct {
	ID    int64   `json:"id"`
	Value float64 `json:"value"`
	Label string  `json:"label"`
}

func benchItems() []benchItem {
	items := make([]benchItem, 100)
	for i := range items {
		items[i] = benchItem{ID: int64(i), Value: float64(i) * 1.5, Label: "item"}
	}
	return items
}

func benchRequest(b *testing.B) []byte {
	e := Encoder{}
	items := make([]any, 100)
	for i := range items {
		items[i] = map[string]any{"id": int64(i), "value": float64(i) * 1.5, "label": "item"}
	}
	msg := map[string]any{"jsonrpc": "2.0", "id": int64(7), "method": "processItems", "params": map[string]any{"items": items}}
	if err := e.Encode(msg, 0); err != nil {
		b.Fatal(err)
	}
	return e.Buf
}

func BenchmarkCompareDecodeRequest(b *testing.B) {
	payload := benchRequest(b)
	b.Run("own", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := Decode(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("vmihailenco", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := vm.NewDecoder(bytes.NewReader(payload)).DecodeInterfaceLoose(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCompareEncodeStructs(b *testing.B) {
	result := map[string]any{"items": benchItems()}
	b.Run("own", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for i := 0; i < b.N; i++ {
			e := Encoder{Buf: buf[:0]}
			if err := e.Encode(result, 0); err != nil {
				b.Fatal(err)
			}
			buf = e.Buf
		}
	})
	b.Run("vmihailenco", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		for i := 0; i < b.N; i++ {
			buf.Reset()
			enc := vm.NewEncoder(&buf)
			enc.SetCustomStructTag("json")
			enc.UseCompactInts(true)
			if err := enc.Encode(result); err != nil {
				b.Fatal(err)
			}
		}
	})
}
