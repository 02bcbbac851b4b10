package aspectipc

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// A Go channel calling a Go handler with streams in both directions: the requester side of this
// SDK against its responder side, both flow controls at work (windows smaller than the items).
func TestStreamCallBetweenTwoChannels(t *testing.T) {
	for _, tc := range bothCodecs {
		t.Run(tc.name, func(t *testing.T) {
			caller, _ := channelPair(t, tc.framing, tc.codec, HandlerTable{}, streamHandlers)
			ctx := context.Background()

			call, err := caller.RequestStream(ctx, "countTo", map[string]any{"n": 50}, StreamOptions{OutWindow: 3})
			if err != nil {
				t.Fatal(err)
			}
			for i := int64(0); ; i++ {
				v, err := call.Out.Recv(ctx)
				if errors.Is(err, io.EOF) {
					if i != 50 {
						t.Fatalf("the stream ended after %d items", i)
					}
					break
				}
				if err != nil || v != i {
					t.Fatalf("item %d: %v, %v", i, v, err)
				}
			}
			if r, err := call.Result(ctx); err != nil || r.Value().(map[string]any)["count"] != int64(50) {
				t.Fatalf("result %v, %v", r.Value(), err)
			}

			echo, err := caller.RequestStream(ctx, "echoStream", nil, StreamOptions{OutWindow: 2, In: true})
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				for i := int64(0); i < 40; i++ {
					if err := echo.In.Send(ctx, i); err != nil {
						t.Errorf("send %d: %v", i, err)
						return
					}
				}
				_ = echo.CloseInput()
			}()
			for i := int64(0); i < 40; i++ {
				if v, err := echo.Out.Recv(ctx); err != nil || v != i {
					t.Fatalf("echo %d: %v, %v", i, v, err)
				}
			}
			if _, err := echo.Out.Recv(ctx); !errors.Is(err, io.EOF) {
				t.Fatalf("want the end, got %v", err)
			}
			if r, err := echo.Result(ctx); err != nil || r.Value().(map[string]any)["count"] != int64(40) {
				t.Fatalf("result %v, %v", r.Value(), err)
			}
		})
	}
}

// Cancelling a call stops the handler's producer, and the caller's steps fail at once.
func TestStreamCallCancel(t *testing.T) {
	caller, _ := channelPair(t, LengthPrefixedFraming{}, MessagePackCodec{}, HandlerTable{}, streamHandlers)
	ctx, cancel := context.WithCancel(context.Background())
	call, err := caller.RequestStream(ctx, "countTo", map[string]any{"n": 1000}, StreamOptions{OutWindow: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := call.Out.Recv(context.Background()); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := call.Result(context.Background()); err == nil {
		t.Fatal("a cancelled call has a result")
	}
	if _, err := call.Out.Recv(context.Background()); err == nil {
		t.Fatal("a cancelled stream still reads")
	}
}

// When the channel closes, a caller waiting for an item fails with -32008.
func TestStreamCallChannelClosed(t *testing.T) {
	caller, _ := channelPair(t, LengthPrefixedFraming{}, MessagePackCodec{}, HandlerTable{},
		HandlerTable{"silent": StreamHandler(func(ctx context.Context, _ Params, _ *InStream, _ *OutStream) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})})
	call, err := caller.RequestStream(context.Background(), "silent", nil, StreamOptions{OutWindow: 2})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := call.Out.Recv(context.Background()); done <- err }()
	caller.Close()
	select {
	case err := <-done:
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeChannelClosed {
			t.Fatalf("want -32008, got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Recv still waits after the channel closed")
	}
}

// Send returns once its item is written, so a producer may refill one buffer for every item: each
// item arrives as it was when sent, large ones (spliced into the frame, not copied) included.
func TestStreamSendLetsTheProducerReuseItsBuffer(t *testing.T) {
	for _, size := range []int{16, 300 << 10} {
		refill := HandlerTable{"refill": StreamHandler(func(ctx context.Context, _ Params, _ *InStream, out *OutStream) (any, error) {
			buf := make([]byte, size)
			for i := 0; i < 20; i++ {
				for j := range buf {
					buf[j] = byte(i)
				}
				if err := out.Send(ctx, buf); err != nil {
					return nil, err
				}
			}
			for j := range buf { // after the last Send too: the caller must still see 19s
				buf[j] = 0xff
			}
			return nil, nil
		})}
		caller, _ := channelPair(t, LengthPrefixedFraming{}, MessagePackCodec{}, HandlerTable{}, refill)
		ctx := context.Background()
		call, err := caller.RequestStream(ctx, "refill", nil, StreamOptions{OutWindow: 16})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			v, err := call.Out.Recv(ctx)
			if err != nil {
				t.Fatalf("size %d, item %d: %v", size, i, err)
			}
			b, ok := v.([]byte)
			if !ok || len(b) != size {
				t.Fatalf("size %d, item %d: got %T of %d bytes", size, i, v, len(b))
			}
			for j, c := range b {
				if c != byte(i) {
					t.Fatalf("size %d, item %d: byte %d is %d, the producer's later refill", size, i, j, c)
				}
			}
		}
		if _, err := call.Out.Recv(ctx); !errors.Is(err, io.EOF) {
			t.Fatalf("size %d: want the end, got %v", size, err)
		}
	}
}
