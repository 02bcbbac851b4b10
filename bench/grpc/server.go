// Command grpc-echo-server is the benchmark's gRPC peer: a gRPC server on a Unix socket whose
// one method, /bench.Echo/Echo, answers every request with its own bytes.
//
// No protoc and no generated code: a codec that passes the message bytes through untouched
// (rawCodec) is forced on the server, and every method is served by one generic handler
// (grpc.UnknownServiceHandler). The Python client (bench/grpc_links.py) does the same with
// identity serializers, so the figures are gRPC's transport (HTTP/2 framing, flow control,
// headers) without any serialization.
//
// Usage: grpc-echo-server -socket PATH. It prints "ready" on stdout once it listens, and serves
// until stdin is closed (its parent went away) or it gets SIGTERM.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
)

// maxMessage allows the benchmark's largest echo (16 MiB) and its gRPC overhead.
const maxMessage = 64 << 20

// rawCodec hands the message bytes through as a mem.BufferSlice, without a copy: the handler
// sends back the very buffers it received.
type rawCodec struct{}

// Marshal returns the BufferSlice the handler got from Unmarshal; gRPC frees it once sent.
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	message, ok := v.(*mem.BufferSlice)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T, only *mem.BufferSlice", v)
	}
	return *message, nil
}

// Unmarshal keeps a reference to the received buffers (gRPC frees its own on return).
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	message, ok := v.(*mem.BufferSlice)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T, only *mem.BufferSlice", v)
	}
	data.Ref()
	*message = data
	return nil
}

// Name is the content subtype; the server is forced to this codec whatever the client says.
func (rawCodec) Name() string { return "raw" }

// echo serves any unary method: one message in, the same message out.
func echo(_ any, stream grpc.ServerStream) error {
	var message mem.BufferSlice
	if err := stream.RecvMsg(&message); err != nil {
		return err
	}
	return stream.SendMsg(&message)
}

func main() {
	socket := flag.String("socket", "", "Unix socket path to listen on")
	flag.Parse()
	if *socket == "" {
		fmt.Fprintln(os.Stderr, "grpc-echo-server: -socket PATH is required")
		os.Exit(2)
	}
	listener, err := net.Listen("unix", *socket)
	if err != nil {
		fmt.Fprintf(os.Stderr, "grpc-echo-server: cannot listen on %s: %v\n", *socket, err)
		os.Exit(1)
	}
	server := grpc.NewServer(
		grpc.ForceServerCodecV2(rawCodec{}),
		grpc.UnknownServiceHandler(echo),
		grpc.MaxRecvMsgSize(maxMessage),
		grpc.MaxSendMsgSize(maxMessage),
	)
	go func() { // stop when the parent closes stdin or asks with a signal
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
		closed := make(chan struct{})
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			close(closed)
		}()
		select {
		case <-signals:
		case <-closed:
		}
		server.Stop()
	}()
	fmt.Println("ready")
	if err := server.Serve(listener); err != nil {
		fmt.Fprintf(os.Stderr, "grpc-echo-server: %v\n", err)
		os.Exit(1)
	}
}
