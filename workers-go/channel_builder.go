package aspectipc

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
)

// ChannelBuilder assembles a Channel from a transport, a framing and a codec, the way the design
// composes them:
//
//	ch, err := aspectipc.NewChannelBuilder().
//		WithTransport(conn).
//		WithFraming(aspectipc.LengthPrefixedFraming{}).
//		WithCodec(aspectipc.MessagePackCodec{}).
//		WithHandler("processItems", processItems).
//		Build()
//	go ch.Run(ctx)
//
// The protocol is always JSONRPCProtocol.
type ChannelBuilder struct {
	name      string
	transport Transport
	framing   Framing
	codec     Codec
	handlers  map[string]Handler
	windows   map[string]int64 // InputWindow of handlers, by method
	inline    map[string]bool  // the handlers given Inline, by method
	grouped   map[string]bool  // the handlers given InlineGrouped, by method
	logger    *slog.Logger
	// maxHandlers is WithMaxConcurrentHandlers' bound (0: DefaultMaxConcurrentHandlers).
	maxHandlers int
	err         error
}

// NewChannelBuilder returns an empty builder.
func NewChannelBuilder() *ChannelBuilder {
	return &ChannelBuilder{name: "channel", handlers: map[string]Handler{}, windows: map[string]int64{}, inline: map[string]bool{}, grouped: map[string]bool{}}
}

// WithName names the channel in errors and logs ("control", "data").
func (b *ChannelBuilder) WithName(name string) *ChannelBuilder { b.name = name; return b }

// WithTransport sets the byte stream the channel runs on (required).
func (b *ChannelBuilder) WithTransport(t Transport) *ChannelBuilder { b.transport = t; return b }

// WithFraming sets the framing (required): LineDelimitedFraming or LengthPrefixedFraming.
func (b *ChannelBuilder) WithFraming(f Framing) *ChannelBuilder { b.framing = f; return b }

// WithCodec sets the codec (required): JSONCodec or MessagePackCodec.
func (b *ChannelBuilder) WithCodec(c Codec) *ChannelBuilder { b.codec = c; return b }

// WithHandler registers h for method (see Channel.Handle), with its options (InputWindow,
// Inline). A reserved "$/" name makes Build fail with ErrReservedMethod, an invalid option with an
// error naming the handler.
func (b *ChannelBuilder) WithHandler(method string, h Handler, opts ...HandlerOption) *ChannelBuilder {
	if isReserved(method) {
		b.err = errors.Join(b.err, reservedError(method))
		return b
	}
	o, err := optionsOf(method, opts)
	if err != nil {
		b.err = errors.Join(b.err, err)
		return b
	}
	b.handlers[method] = h
	delete(b.windows, method)
	if o.inputWindow > 0 {
		b.windows[method] = o.inputWindow
	}
	delete(b.inline, method)
	if o.inline {
		b.inline[method] = true
	}
	delete(b.grouped, method)
	if o.grouped {
		b.grouped[method] = true
	}
	return b
}

// withOptions gives the handlers registered so far the options listed for their method
// (a worker's Config.HandlerOptions); options for other methods are ignored.
func (b *ChannelBuilder) withOptions(options map[string][]HandlerOption) *ChannelBuilder {
	for method, opts := range options {
		if h, ok := b.handlers[method]; ok {
			b.WithHandler(method, h, opts...)
		}
	}
	return b
}

// WithHandlers registers every handler of hs.
func (b *ChannelBuilder) WithHandlers(hs HandlerTable) *ChannelBuilder {
	for method, h := range hs {
		b.WithHandler(method, h)
	}
	return b
}

// WithLogger sets where the channel reports what it drops (unknown notifications, late or
// invalid responses, failed writes), as warnings, and the handlers that fail, as errors. Without
// one it is silent.
func (b *ChannelBuilder) WithLogger(logger *slog.Logger) *ChannelBuilder {
	b.logger = logger
	return b
}

// WithMaxConcurrentHandlers sets how many of the peer's requests the channel runs at once (at least
// 1; DefaultMaxConcurrentHandlers, 256, when not set). With that many running, the channel stops
// reading until one ends (backpressure: nothing is dropped). A handler waiting for the peer (for
// the answer to its own Request, on either channel, or for its stream's items or credit) does not
// count meanwhile, so handlers that call the peer back never stop both sides. Inline handlers and
// notification handlers are not counted: notifications wait for their handler in a queue of their
// own, of at most 1,024 notifications and 16 MiB (PROTOCOL.md 4.5).
func (b *ChannelBuilder) WithMaxConcurrentHandlers(n int) *ChannelBuilder {
	if err := checkMaxConcurrentHandlers(n); err != nil {
		b.err = errors.Join(b.err, err)
		return b
	}
	b.maxHandlers = n
	return b
}

// Build returns the channel. Start it with Run.
func (b *ChannelBuilder) Build() (*Channel, error) {
	if b.err != nil {
		return nil, b.err
	}
	if b.transport == nil || b.framing == nil || b.codec == nil {
		return nil, errors.New("aspectipc: ChannelBuilder needs a transport, a framing and a codec")
	}
	base, cancel := context.WithCancelCause(context.Background())
	c := &Channel{
		name:      b.name,
		transport: b.transport,
		writer:    newFrameWriter(b.transport),
		framing:   b.framing,
		codec:     b.codec,
		logger:    b.logger,
		failures:  failurePolicy{log: b.logger},
		handlers:  make(map[string]Handler, len(b.handlers)),
		inline:    make(map[string]bool, len(b.inline)),
		grouped:   make(map[string]bool, len(b.grouped)),
		pending:   map[ID]chan outcome{},
		running:   map[ID]*inflight{},
		active:    map[*inflight]struct{}{},
		base:      base,
		cancel:    cancel,
		done:      make(chan struct{}),

		maxHandlers: cmp.Or(b.maxHandlers, DefaultMaxConcurrentHandlers),
		placeFreed:  make(chan struct{}, 1),
	}
	for method, h := range b.handlers {
		c.handlers[method] = h
	}
	for method := range b.inline {
		c.inline[method] = true
	}
	for method := range b.grouped {
		c.grouped[method] = true
	}
	c.streams = newStreamTable(c.name, DefaultStreamWindow, streamHooks{notify: c.notifyStream, fail: c.failStream})
	for method, window := range b.windows {
		c.streams.setWindow(method, window)
	}
	return c, nil
}

// HandlerTable maps method names to their handlers.
type HandlerTable map[string]Handler
