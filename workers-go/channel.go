package aspectipc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// Handler serves one method. ctx is cancelled when the peer sends $/cancelRequest for the
// request, when the worker shuts down and when the channel closes (context.Cause tells which:
// ErrRequestCancelled, ErrShuttingDown, ErrParentLost, ErrChannelClosed). ChannelFrom(ctx) is the
// channel the request came in on, to call or notify the peer; WorkerFrom(ctx) reaches both
// channels of a worker started by Serve.
//
// The returned value is the result (nil is sent as null). A returned error is sent as a JSON-RPC
// error: an *Error (or an error wrapping one) with its own code, message and data; any other error
// with CodeHandlerError, its message and data {"type": "<Go type>"}; a panic likewise, with the
// panic value's type and "traceback": the panic and its goroutine stack (PROTOCOL.md 4.10). A
// handler that ends with an error after its ctx was cancelled is answered CodeRequestCancelled.
// For a notification, the result is discarded and an error or panic is logged.
type Handler func(ctx context.Context, params Params) (any, error)

// Channel is one JSON-RPC connection over a transport, with a framing and a codec: it answers the
// peer's requests with the registered handlers (concurrently, at most WithMaxConcurrentHandlers
// at once) and sends requests and notifications to the peer. Writes are serialized: frames from
// concurrent senders never interleave (those ready together go out in one write), and a sender
// waits for room in the write queue before it encodes its message. Build one with ChannelBuilder,
// then call Run.
type Channel struct {
	name      string
	transport Transport
	framing   Framing
	codec     Codec
	rpc       JSONRPCProtocol
	logger    *slog.Logger

	writer *frameWriter
	// writeFailed is set when a write failed (the stream is broken) before the channel closes.
	writeFailed atomic.Bool

	mu       sync.Mutex
	handlers map[string]Handler
	inline   map[string]bool // the methods whose handlers run on the read loop (Inline)
	grouped  map[string]bool // and of those, the ones whose answers a read's batch shares (InlineGrouped)
	nextID   int64
	pending  map[ID]chan outcome
	running  map[ID]*inflight       // requests by id, for $/cancelRequest
	active   map[*inflight]struct{} // every running handler, requests and notifications
	refusing *Error                 // when set, new requests are answered with it
	closed   bool

	base      context.Context // parent of every handler context
	cancel    context.CancelCauseFunc
	closeOnce sync.Once
	done      chan struct{}

	// worker, when set, is what WorkerFrom returns in handler contexts.
	worker *Worker
	// gate, when set, sees every incoming message in the read loop until it returns true
	// (the data channel's $/hello); returning false closes the channel.
	gate func(ev gateEvent) bool
	// onClose runs when the channel starts closing, before its transport is closed, so that the
	// peer never sees the close before the worker has released the channel.
	onClose func()
	// onGatePassed runs in the read loop when the gate lets the connection through.
	onGatePassed func()
	// preGateLimit, when set, is the frame size limit while the gate is set (the data channel's
	// 64 KiB before $/hello); the framing's own limit applies once the gate has passed.
	preGateLimit int64
	// Read-loop state, touched by Run's goroutine only: inlineRuns counts the handlers run
	// inline, handedOver says whether a message read since the last read was left to another
	// goroutine (see Run).
	inlineRuns int
	handedOver bool
	// reserved, when set, sees the "$/" requests and notifications other than $/ping and
	// $/cancelRequest in the read loop and reports whether it handled them ($/shutdown,
	// $/hello after authentication).
	reserved func(msg Message) bool
	// notifications runs the notification handlers one at a time, in arrival order.
	notifications notificationQueue
	// streams holds the streams the peer opened with its requests (PROTOCOL.md 13).
	streams *streamTable
	// failures says whether a failed handler's answer carries its traceback, and where the
	// failure is logged.
	failures failurePolicy
	// The dispatch bound (channel_bound.go): at most maxHandlers request handlers are counted
	// (guarded by mu); placeWanted when the read loop waits for a place, placeFreed wakes it.
	maxHandlers int
	counted     int
	placeWanted bool
	placeFreed  chan struct{}
}

// gateEvent is one incoming payload: a classified message or a decoding failure.
type gateEvent struct {
	msg Message
	err error
}

// outcome completes a pending request.
type outcome struct {
	result Result
	err    error
}

// Name returns the channel's name ("control", "data"), used in errors and logs.
func (c *Channel) Name() string {
	if c == nil {
		return ""
	}
	return c.name
}

// Done is closed when the channel has closed (at once for a nil *Channel).
func (c *Channel) Done() <-chan struct{} {
	if c == nil {
		return closedChan
	}
	return c.done
}

// Handle registers h for method, replacing any previous handler (and its options); a nil h
// removes it. Names starting with "$/" are reserved for the protocol and rejected with
// ErrReservedMethod. opts configure the handler (InputWindow, Inline); an invalid one is an error
// naming the handler, and nothing is registered.
func (c *Channel) Handle(method string, h Handler, opts ...HandlerOption) error {
	if c == nil {
		return absentError(context.Background(), "handler for", method)
	}
	if isReserved(method) {
		return reservedError(method)
	}
	o, err := optionsOf(method, opts)
	if err != nil {
		return err
	}
	c.handle(method, h, o.inline && h != nil, o.grouped && h != nil)
	c.streams.setWindow(method, o.inputWindow)
	return nil
}

func isReserved(method string) bool { return strings.HasPrefix(method, "$/") }

func reservedError(method string) error { return fmt.Errorf("%w: %q", ErrReservedMethod, method) }

func (c *Channel) handle(method string, h Handler, inline, grouped bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h == nil {
		delete(c.handlers, method)
	} else {
		c.handlers[method] = h
	}
	if inline {
		c.inline[method] = true
	} else {
		delete(c.inline, method)
	}
	if grouped {
		c.grouped[method] = true
	} else {
		delete(c.grouped, method)
	}
}

// Close closes the channel and its transport: pending requests fail with CodeChannelClosed and
// running handlers are cancelled with cause ErrChannelClosed.
func (c *Channel) Close() error {
	if c == nil {
		return nil
	}
	c.closeWith(ErrChannelClosed)
	return nil
}

func (c *Channel) closeWith(cause error) {
	c.closeOnce.Do(func() {
		if c.onClose != nil {
			c.onClose()
		}
		c.mu.Lock()
		c.closed = true
		pending := c.pending
		c.pending = map[ID]chan outcome{}
		c.mu.Unlock()
		_ = c.transport.Close()
		c.cancel(cause)
		for _, ch := range pending {
			ch <- outcome{err: &Error{Code: CodeChannelClosed, Message: c.name + " channel closed before the response arrived", cause: ErrChannelClosed}}
		}
		// The streams of this side's calls fail too (PROTOCOL.md 13.7); a handler's end with its ctx.
		c.streams.dropCalls(&Error{Code: CodeChannelClosed, Message: c.name + " channel closed: the stream is gone", cause: ErrChannelClosed})
		close(c.done)
	})
}

// Run reads and dispatches incoming messages until the peer closes the stream (it returns nil),
// the stream breaks (a *FramingError or the transport's error), Close is called (nil) or ctx is
// done (nil). The channel is closed when Run returns.
func (c *Channel) Run(ctx context.Context) error {
	if c == nil {
		return &Error{Code: CodeChannelClosed, Message: "cannot run a nil *Channel: build one with ChannelBuilder", cause: ErrChannelClosed}
	}
	stop := context.AfterFunc(ctx, func() { c.closeWith(ErrChannelClosed) })
	defer stop()
	dec := c.framing.NewDecoder()
	if limiter, ok := dec.(frameLimiter); ok && c.gate != nil && c.preGateLimit > 0 {
		limit := limiter.frameLimit()
		limiter.setFrameLimit(min(limit, c.preGateLimit))
		c.onGatePassed = func() { limiter.setFrameLimit(limit) }
	}
	// A decoder that lends its buffer is read into in place; any other is fed copies.
	lender, lends := dec.(bufferLender)
	var buf []byte
	if !lends {
		buf = make([]byte, 64<<10)
	}
	for {
		if c.handedOver {
			c.handedOver = false
			if _, parks := c.transport.(blocker); parks {
				// The read may park this thread in the kernel, where the goroutine this loop
				// just woke would wait for it: let it run first (conn_blocking_unix.go). Only
				// then, for a yield also wakes a spare thread, which costs more than it saves
				// when nothing is waiting.
				runtime.Gosched()
			}
		}
		var n int
		var readErr error
		if lends {
			n, readErr = c.transport.Read(lender.readBuffer())
			if n > 0 {
				lender.commit(n)
			}
		} else {
			n, readErr = c.transport.Read(buf)
			if n > 0 {
				dec.Feed(buf[:n])
			}
		}
		if readErr != nil {
			dec.FeedEOF()
		}
		if err := c.dispatchFrames(dec); err != nil {
			c.closeWith(ErrParentLost)
			if errors.Is(err, errGateClosed) {
				return nil
			}
			return err
		}
		if readErr != nil {
			c.closeWith(ErrParentLost)
			if errors.Is(readErr, io.EOF) || errors.Is(readErr, net.ErrClosed) || errors.Is(readErr, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("%s channel: read failed: %w", c.name, readErr)
		}
	}
}

// errGateClosed ends Run after the gate refused a connection.
var errGateClosed = errors.New("connection refused by the gate")

// dispatchFrames handles every complete frame buffered in dec, then writes the responses held
// back meanwhile (hold). It returns an error when reading must stop.
func (c *Channel) dispatchFrames(dec FrameDecoder) error {
	err := c.dispatchBuffered(dec)
	c.releaseHeld()
	return err
}

func (c *Channel) dispatchBuffered(dec FrameDecoder) error {
	for {
		frame, err := dec.Next()
		switch {
		case err == nil:
			inline := c.inlineRuns
			if !c.dispatchPayload(frame) {
				return errGateClosed
			}
			if c.inlineRuns == inline { // not answered inline: another goroutine has it
				c.handedOver = true
			}
			continue
		case errors.Is(err, ErrIncomplete), errors.Is(err, io.EOF):
			return nil
		}
		var fe *FramingError
		if !errors.As(err, &fe) {
			return err
		}
		// Before the gate has passed (an unauthenticated data connection) nothing is answered.
		if (fe.Kind == LineTooLong || fe.Kind == FrameTooLarge) && c.gate == nil {
			what := "frame"
			if fe.Kind == LineTooLong {
				what = "line"
			}
			c.sendError(ID{}, tooLargeError(what, fe))
		}
		if fe.Kind != LineTooLong { // every other framing error leaves the stream unusable
			return fmt.Errorf("%s channel: %w", c.name, err)
		}
	}
}

// dispatchPayload decodes, classifies and dispatches one payload. It returns false when the gate
// refused the connection.
func (c *Channel) dispatchPayload(payload []byte) bool {
	value, err := decodeMessage(c.codec, payload)
	var msg Message
	if err == nil {
		msg = c.rpc.Classify(value)
		if isReserved(msg.Method) { // a reserved method's handling may wait: nothing stays held
			c.releaseHeld()
		}
		// Lazy params stay bytes only on their way to a handler, which decodes them into its
		// own type; the gate, the reserved methods and streams read the generic value.
		if msg.lazy != nil && (c.gate != nil || isReserved(msg.Method) || msg.lazy.Watched) {
			msg.materialize()
		}
	}
	if c.gate != nil {
		if !c.gate(gateEvent{msg: msg, err: err}) {
			return false
		}
		c.gate = nil
		if c.onGatePassed != nil {
			c.onGatePassed()
		}
		return true
	}
	if err != nil {
		c.dispatchUndecodable(payload, err)
		return true
	}
	switch msg.Kind {
	case KindRequest:
		c.dispatchRequest(msg, len(payload))
	case KindNotification:
		c.dispatchNotification(msg, len(payload))
	case KindResponse, KindErrorResponse:
		c.completeRequest(msg)
	default:
		c.dispatchInvalid(msg)
	}
	return true
}

// log reports what the channel drops or cannot send, as a warning naming the channel.
func (c *Channel) log(format string, args ...any) {
	if c.logger != nil {
		c.logger.Warn(c.name+" channel: "+fmt.Sprintf(format, args...), "channel", c.name)
	}
}
