//go:build unix

package aspectipc

import (
	"context"
	"io"
	"net"
	"testing"
)

// Benchmarks of sending with a live ctx (a cancel channel) on a blocked data connection: what a
// handler's OutStream.Send and Channel.Request/Notify with a ctx that can end do. Run them with
//
//	go test -run '^$' -bench SendWithCtx -benchmem

// benchBlockedChannel returns a data channel over a blocked connection (conn_blocking_unix.go),
// running, and the other end of its socket.
func benchBlockedChannel(b *testing.B, opts ...func(*ChannelBuilder)) (*Channel, net.Conn) {
	b.Helper()
	server, client := benchSocketPair(b)
	conn := newDataConn(server).(*blockingConn)
	conn.block()
	if conn.fd < 0 {
		b.Fatal("block left the connection on the poller")
	}
	builder := NewChannelBuilder().WithName("data").WithTransport(conn).
		WithFraming(LengthPrefixedFraming{}).WithCodec(MessagePackCodec{})
	for _, o := range opts {
		o(builder)
	}
	ch, err := builder.Build()
	if err != nil {
		b.Fatal(err)
	}
	go ch.Run(context.Background())
	b.Cleanup(func() {
		client.Close()
		ch.Close()
	})
	return ch, client
}

// BenchmarkSendWithCtx: notify is a small notification with a ctx that can end, to a peer that
// drains the socket (a stream item's path); request is a small request with such a ctx, answered
// by a peer Channel's echo.
func BenchmarkSendWithCtx(b *testing.B) {
	b.Run("notify", func(b *testing.B) {
		ch, peer := benchBlockedChannel(b)
		go func() { _, _ = io.Copy(io.Discard, peer) }()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		params := map[string]any{"stream": int64(1), "seq": int64(0), "value": benchPayload(64)}
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU()
		for i := 0; i < b.N; i++ {
			if err := ch.Notify(ctx, "item", params); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		cpu.report(b)
	})
	// notify-concurrent is notify from several senders at once: a sender that finds a write in
	// progress queues its frame, and one of them writes the batch (the lead's path).
	b.Run("notify-concurrent", func(b *testing.B) {
		ch, peer := benchBlockedChannel(b)
		go func() { _, _ = io.Copy(io.Discard, peer) }()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		params := map[string]any{"stream": int64(1), "seq": int64(0), "value": benchPayload(64)}
		b.SetParallelism(4)
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := ch.Notify(ctx, "item", params); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		cpu.report(b)
	})
	b.Run("request", func(b *testing.B) {
		ch, peerConn := benchBlockedChannel(b)
		peer, err := NewChannelBuilder().WithName("peer").WithTransport(peerConn).
			WithFraming(LengthPrefixedFraming{}).WithCodec(MessagePackCodec{}).
			WithHandler("echo", func(_ context.Context, p Params) (any, error) { return p.Value(), nil }, Inline()).
			Build()
		if err != nil {
			b.Fatal(err)
		}
		go peer.Run(context.Background())
		b.Cleanup(func() { peer.Close() })
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		params := map[string]any{"n": int64(1)}
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU()
		for i := 0; i < b.N; i++ {
			if _, err := ch.Request(ctx, "echo", params); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		cpu.report(b)
	})
}

// BenchmarkFrameWriterWithCancel: the write path alone, without encoding: a 64-byte frame written
// with a cancel channel on a blocked data connection, to a peer that drains the socket (one sender:
// no write is ever in progress), or from four senders at once (queued frames, written by a lead).
func BenchmarkFrameWriterWithCancel(b *testing.B) {
	for _, senders := range []int{1, 4} {
		b.Run(map[int]string{1: "alone", 4: "concurrent"}[senders], func(b *testing.B) {
			server, client := benchSocketPair(b)
			conn := newDataConn(server).(*blockingConn)
			conn.block()
			b.Cleanup(func() { client.Close(); conn.Close() })
			go func() { _, _ = io.Copy(io.Discard, client) }()
			fw := newFrameWriter(conn)
			payload := benchPayload(64)
			cancel := make(chan struct{})
			b.SetParallelism(senders)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			write := func() {
				// A frame's slices of its own: a partial write cuts them.
				if err := fw.writeOr([][]byte{payload}, cancel, nil); err != nil {
					b.Error(err)
				}
			}
			if senders == 1 {
				for i := 0; i < b.N; i++ {
					write()
				}
			} else {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						write()
					}
				})
			}
			b.StopTimer()
			cpu.report(b)
		})
	}
}
