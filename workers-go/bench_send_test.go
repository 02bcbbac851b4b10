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
