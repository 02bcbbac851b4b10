package aspectipc

import "fmt"

// HandlerOption configures a handler where it is registered: Channel.Handle,
// ChannelBuilder.WithHandler, or Config.HandlerOptions for a worker's handler tables. The options
// are InputWindow and Inline.
type HandlerOption func(*handlerOptions)

type handlerOptions struct {
	inputWindow    int64
	hasInputWindow bool
	inline         bool
	grouped        bool
}

// InputWindow sets the handler's input window (PROTOCOL.md 13.3): how many items of an input
// stream its request may have buffered or on their way, granted as credit at once when a request
// opens an input stream and again as the handler reads. 1 to 1024; DefaultStreamWindow (16)
// without the option. A value out of range makes the registration fail, naming the handler.
func InputWindow(n int) HandlerOption {
	return func(o *handlerOptions) { o.inputWindow, o.hasInputWindow = int64(n), true }
}

// optionsOf applies opts for the handler of method: its input window is 0 when they give none.
// An input window out of range is an error naming the handler.
func optionsOf(method string, opts []HandlerOption) (handlerOptions, error) {
	var o handlerOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if !o.hasInputWindow {
		o.inputWindow = 0
		return o, nil
	}
	if o.inputWindow < 1 || o.inputWindow > MaxStreamWindow {
		return o, fmt.Errorf("aspectipc: handler %q: InputWindow(%d) is out of range: an input window is 1 to %d items (default %d)",
			method, o.inputWindow, MaxStreamWindow, DefaultStreamWindow)
	}
	return o, nil
}

// checkHandlerOptions checks a worker's Config.HandlerOptions: every method names a handler of
// Control or Data, and every option is valid.
func checkHandlerOptions(options map[string][]HandlerOption, tables ...HandlerTable) error {
	for method, opts := range options {
		found := false
		for _, hs := range tables {
			if _, ok := hs[method]; ok {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("aspectipc: Config.HandlerOptions names %q, which is not a handler of Control or Data", method)
		}
		if _, err := optionsOf(method, opts); err != nil {
			return err
		}
	}
	return nil
}
