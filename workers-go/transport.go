package aspectipc

import (
	"errors"
	"io"
)

// Transport is a byte stream a Channel runs on: the worker's stdio, or a data connection (any
// net.Conn is one). Close must unblock a pending Read where the platform allows it.
type Transport interface {
	io.Reader
	io.Writer
	io.Closer
}

// StdioTransport returns the transport of the control channel: it reads in (the worker's stdin)
// and writes out (the protocol's copy of the real stdout, see TakeOverStdout). Close closes both.
func StdioTransport(in io.ReadCloser, out io.WriteCloser) Transport {
	return &stdioTransport{in: in, out: out}
}

type stdioTransport struct {
	in  io.ReadCloser
	out io.WriteCloser
}

// Read reads from the worker's stdin.
func (t *stdioTransport) Read(p []byte) (int, error) { return t.in.Read(p) }

// Write writes to the protocol's stdout.
func (t *stdioTransport) Write(p []byte) (int, error) { return t.out.Write(p) }

// Close closes both directions.
func (t *stdioTransport) Close() error {
	return errors.Join(t.in.Close(), t.out.Close())
}
