package aspectipc

import (
	"context"
	"fmt"
)

// A nil *Channel is what Worker.Data returns while there is no data channel to call on: the
// worker has none (ASPECT_IPC_DATA_PATH is not set), or no parent connection has passed $/hello
// yet, or it closed. Every method of a nil *Channel is safe, so that a handler calling
// WorkerFrom(ctx).Data().Request(...) gets an error it can return, not a nil pointer dereference
// answered as a crash; a nil check still tells whether a data channel is connected, as before.

// closedChan is what Done returns for a nil *Channel: there is no connection to wait for.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// absentError is the error of a call on a nil *Channel: an *Error with CodeChannelClosed wrapping
// ErrChannelClosed (what a call on a closed channel gets). A handler's ctx reaches its worker,
// which tells why there is no channel.
func absentError(ctx context.Context, call, method string) error {
	why := "there is no channel (a nil *Channel)"
	if w := WorkerFrom(ctx); w != nil {
		why = "the data channel is not connected: no parent connection has passed $/hello yet, or it closed"
		if w.DataPath() == "" {
			why = "this worker has no data channel (ASPECT_IPC_DATA_PATH is not set)"
		}
	}
	return &Error{Code: CodeChannelClosed, Message: fmt.Sprintf("%s %q: %s", call, method, why), cause: ErrChannelClosed}
}
