package aspectipc

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/outframe"
)

// Benchmarks of the data channel's hot paths. Run them with
//
//	go test -run '^$' -bench . -benchmem
//
// The end-to-end ones (BenchmarkDataEcho*) drive a Channel built like the worker's data channel
// over a real Unix socket pair; the peer is a minimal raw client in this process (prebuilt request
// frames, responses read into one reused buffer), so that nearly all of the cost outside the
// kernel is the channel's.

var benchSizes = []struct {
	name string
	size int
}{
	{"64B", 64},
	{"4KiB", 4 << 10},
	{"64KiB", 64 << 10},
	{"1MiB", 1 << 20},
	{"16MiB", 16 << 20},
}

func benchPayload(size int) []byte {
	out := make([]byte, size)
	x := uint32(2463534242)
	for i := range out {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		out[i] = byte(x)
	}
	return out
}

// benchRequestFrame returns the framed MessagePack request {"jsonrpc","id","method","params"}.
func benchRequestFrame(b *testing.B, id int64, method string, params any) []byte {
	b.Helper()
	payload, err := MessagePackCodec{}.Encode(JSONRPCProtocol{}.Request(IntID(id), method, params))
	if err != nil {
		b.Fatal(err)
	}
	frame, err := LengthPrefixedFraming{}.Encode(payload)
	if err != nil {
		b.Fatal(err)
	}
	return frame
}

// benchSocketPair returns the two ends of a real Unix stream socket pair.
func benchSocketPair(b *testing.B) (net.Conn, net.Conn) {
	b.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		b.Fatal(err)
	}
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	return conn(fds[0]), conn(fds[1])
}

// benchDataServer starts a data-channel-like Channel serving echo on one end of a socket pair
// and returns the other end.
func benchDataServer(b *testing.B) net.Conn {
	b.Helper()
	server, client := benchSocketPair(b)
	ch, err := NewChannelBuilder().WithName("data").WithTransport(server).
		WithFraming(LengthPrefixedFraming{}).WithCodec(MessagePackCodec{}).
		WithHandler("echo", func(_ context.Context, p Params) (any, error) { return p.Value(), nil }).
		Build()
	if err != nil {
		b.Fatal(err)
	}
	go ch.Run(context.Background())
	b.Cleanup(func() {
		client.Close()
		ch.Close()
	})
	return client
}

// cpuMeter reports the process's CPU time (user + system, both sides of the socket) per
// operation as "cpu-ns/op": on a shared machine it varies much less than the wall-clock ns/op.
type cpuMeter struct{ start int64 }

func processCPU() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func startCPU() cpuMeter { return cpuMeter{start: processCPU()} }

func (m cpuMeter) report(b *testing.B) {
	b.ReportMetric(float64(processCPU()-m.start)/float64(b.N), "cpu-ns/op")
}

// readResponse reads one frame into buf (grown as needed) and returns it.
func readResponse(b *testing.B, r io.Reader, buf []byte) []byte {
	var header [4]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		b.Fatal(err)
	}
	n := int(binary.BigEndian.Uint32(header[:]))
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		b.Fatal(err)
	}
	return buf
}

// BenchmarkDataEcho: one echo of a bin payload at a time (request, then its response).
func BenchmarkDataEcho(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			conn := benchDataServer(b)
			in := bufio.NewReaderSize(conn, 64<<10)
			frame := benchRequestFrame(b, 1, "echo", []any{benchPayload(s.size)})
			var buf []byte
			b.SetBytes(int64(2 * s.size))
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			for i := 0; i < b.N; i++ {
				if _, err := conn.Write(frame); err != nil {
					b.Fatal(err)
				}
				buf = readResponse(b, in, buf)
			}
			b.StopTimer()
			cpu.report(b)
			if len(buf) < s.size {
				b.Fatalf("response of %d bytes for a %d-byte payload", len(buf), s.size)
			}
		})
	}
}

// BenchmarkDataEchoPipelined: small echoes with inFlight requests outstanding, the way the
// benchmark's "small requests per second, 64 in flight" drives a worker.
func BenchmarkDataEchoPipelined(b *testing.B) {
	for _, inFlight := range []int{8, 64} {
		b.Run(fmt.Sprintf("small-x%d", inFlight), func(b *testing.B) {
			conn := benchDataServer(b)
			frames := make([][]byte, inFlight)
			for i := range frames {
				frames[i] = benchRequestFrame(b, int64(i+1), "echo", map[string]any{"n": 1})
			}
			credits := make(chan struct{}, inFlight)
			for i := 0; i < inFlight; i++ {
				credits <- struct{}{}
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			writeErr := make(chan error, 1)
			go func() {
				for i := 0; i < b.N; i++ {
					<-credits
					if _, err := conn.Write(frames[i%inFlight]); err != nil {
						writeErr <- err
						return
					}
				}
				writeErr <- nil
			}()
			in := bufio.NewReaderSize(conn, 64<<10)
			var buf []byte
			for i := 0; i < b.N; i++ {
				buf = readResponse(b, in, buf)
				credits <- struct{}{}
			}
			b.StopTimer()
			cpu.report(b)
			if err := <-writeErr; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkLengthPrefixedDecoderFeed: the pure decoder fed 64 KiB chunks (what a read returns),
// for a stream of small frames and for one large frame. (Channel.Run reads into the decoder's own
// buffer instead: see BenchmarkLengthPrefixedDecoderRead.)
func BenchmarkLengthPrefixedDecoderFeed(b *testing.B) {
	for _, s := range []struct {
		name   string
		frame  int
		frames int
	}{{"64B", 64, 1024}, {"16MiB", 16 << 20, 1}} {
		b.Run(s.name, func(b *testing.B) {
			one, err := LengthPrefixedFraming{}.Encode(benchPayload(s.frame))
			if err != nil {
				b.Fatal(err)
			}
			stream := make([]byte, 0, len(one)*s.frames)
			for i := 0; i < s.frames; i++ {
				stream = append(stream, one...)
			}
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				dec := LengthPrefixedFraming{}.NewDecoder()
				got := 0
				for rest := stream; len(rest) > 0; {
					chunk := rest[:min(len(rest), 64<<10)]
					rest = rest[len(chunk):]
					dec.Feed(chunk)
					for {
						if _, err := dec.Next(); err != nil {
							break
						}
						got++
					}
				}
				if got != s.frames {
					b.Fatalf("%d frames, want %d", got, s.frames)
				}
			}
		})
	}
}

// BenchmarkMessagePackDecodeRequest: decoding a small request and a 1 MiB bin request.
func BenchmarkMessagePackDecodeRequest(b *testing.B) {
	for _, s := range []struct {
		name   string
		params any
	}{{"small", map[string]any{"n": 1}}, {"bin-1MiB", []any{benchPayload(1 << 20)}}} {
		b.Run(s.name, func(b *testing.B) {
			payload, err := MessagePackCodec{}.Encode(JSONRPCProtocol{}.Request(IntID(7), "echo", s.params))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				v, err := MessagePackCodec{}.Decode(payload)
				if err != nil {
					b.Fatal(err)
				}
				if (JSONRPCProtocol{}).Classify(v).Kind != KindRequest {
					b.Fatal("not a request")
				}
			}
		})
	}
}

// BenchmarkMessagePackEncodeResponse: encoding and framing a response, as the channel sends it.
func BenchmarkMessagePackEncodeResponse(b *testing.B) {
	for _, s := range []struct {
		name   string
		result any
	}{{"small", map[string]any{"n": int64(1)}}, {"bin-1MiB", []any{benchPayload(1 << 20)}}} {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				payload, err := MessagePackCodec{}.Encode(JSONRPCProtocol{}.Response(IntID(7), s.result))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := (LengthPrefixedFraming{}).Encode(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLengthPrefixedDecoderRead: the decoder as Channel.Run drives it, each read going into
// the buffer it lends (the stream comes from memory, in reads of at most 64 KiB).
func BenchmarkLengthPrefixedDecoderRead(b *testing.B) {
	for _, s := range []struct {
		name   string
		frame  int
		frames int
	}{{"64B", 64, 1024}, {"16MiB", 16 << 20, 1}} {
		b.Run(s.name, func(b *testing.B) {
			one, err := LengthPrefixedFraming{}.Encode(benchPayload(s.frame))
			if err != nil {
				b.Fatal(err)
			}
			stream := make([]byte, 0, len(one)*s.frames)
			for i := 0; i < s.frames; i++ {
				stream = append(stream, one...)
			}
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				dec := LengthPrefixedFraming{}.NewDecoder().(*lengthPrefixedDecoder)
				got := 0
				for rest := stream; len(rest) > 0; {
					buf := dec.readBuffer()
					n := copy(buf[:min(len(buf), 64<<10)], rest)
					rest = rest[n:]
					dec.commit(n)
					for {
						if _, err := dec.Next(); err != nil {
							break
						}
						got++
					}
				}
				if got != s.frames {
					b.Fatalf("%d frames, want %d", got, s.frames)
				}
			}
		})
	}
}

// BenchmarkProcessItemsRequest: the worker's side of the seed's processItems(1000) on the data
// channel, without the I/O: decode and classify the request, decode its params into a struct the
// way a handler does, encode and frame the response.
func BenchmarkProcessItemsRequest(b *testing.B) {
	items := make([]any, 1000)
	for i := range items {
		items[i] = map[string]any{"id": int64(i), "value": float64(i) * 1.5}
	}
	payload, err := MessagePackCodec{}.Encode(JSONRPCProtocol{}.Request(IntID(3), "processItems", map[string]any{"items": items}))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	for i := 0; i < b.N; i++ {
		v, err := decodeMessage(MessagePackCodec{}, payload) // as the channel does
		if err != nil {
			b.Fatal(err)
		}
		msg := JSONRPCProtocol{}.Classify(v)
		var args struct {
			Items []struct {
				Value float64 `json:"value"`
			} `json:"items"`
		}
		if err := msg.params().Decode(&args); err != nil {
			b.Fatal(err)
		}
		sum := 0.0
		for _, item := range args.Items {
			sum += item.Value
		}
		out, err := MessagePackCodec{}.Encode(JSONRPCProtocol{}.Response(msg.ID, map[string]any{"processed": len(args.Items), "sum": sum}))
		if err != nil || len(out) == 0 {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}

// BenchmarkResponseFrame: a response as the channel builds it: encoded in place behind the
// header, into a pooled frame, large binaries spliced in (compare BenchmarkMessagePackEncodeResponse).
func BenchmarkResponseFrame(b *testing.B) {
	for _, s := range []struct {
		name   string
		result any
	}{{"small", map[string]any{"n": int64(1)}}, {"bin-1MiB", []any{benchPayload(1 << 20)}}} {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				f := outframe.Get(4)
				if err := (MessagePackCodec{}).encodeInto(f, wireResponse{id: IntID(7), result: s.result}); err != nil {
					b.Fatal(err)
				}
				if err := (LengthPrefixedFraming{}).frameInPlace(f); err != nil {
					b.Fatal(err)
				}
				f.Release()
			}
		})
	}
}
