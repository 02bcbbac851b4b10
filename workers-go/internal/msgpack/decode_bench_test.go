package msgpack

import (
	"syscall"
	"testing"
)

// BenchmarkDecodeProcessItems: the request of the bench's processItems(1000) (an array of a
// thousand {"id": i, "value": i*1.5} in the params), decoded to generic values as the worker does
// before dispatch. cpu-ns/op (the process's CPU time, the garbage collector's included) is
// steadier than ns/op on a busy machine.
func BenchmarkDecodeProcessItems(b *testing.B) {
	items := make([]any, 1000)
	for i := range items {
		items[i] = map[string]any{"id": int64(i), "value": float64(i) * 1.5}
	}
	e := Encoder{}
	msg := map[string]any{"jsonrpc": "2.0", "id": int64(3), "method": "processItems", "params": map[string]any{"items": items}}
	if err := e.Encode(msg, 0); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(e.Buf)))
	b.ReportAllocs()
	b.ResetTimer()
	start := processCPU()
	for i := 0; i < b.N; i++ {
		if _, err := Decode(e.Buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
}

func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
