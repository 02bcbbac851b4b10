package aspectipc

import (
	"context"
	"errors"
	"fmt"
	"reflect"
)

// Request calls method on the peer and waits for its answer. params may be nil (no params
// member), a map, a struct, a slice or an array. It returns the peer's result; an *Error with the
// peer's code, message and data when the peer answered an error; an *Error with
// CodeRequestTimeout or CodeRequestCancelled (wrapping ctx.Err()) when ctx ends first; an *Error
// with CodeChannelClosed (wrapping ErrChannelClosed) when the channel closes first; a *CodecError
// or *FramingError when the request cannot be sent (nothing is written then).
//
// ctx bounds the whole call, sending included: a request still waiting for room in the write queue
// (it is encoded only once there is room: a peer that does not read holds up senders, not encoded
// copies of their messages) or still queued behind other frames when ctx ends is never sent; one
// already (partly) written is completed in the background and the peer is sent $/cancelRequest,
// so a peer that stops reading cannot hold the call past its deadline. While it waits, a handler's
// call does not count against its channel's MaxConcurrentHandlers. Binaries of 8 KiB or more in params are written from where they are: do not
// modify them until the peer has answered or ctx has ended. From an Inline handler of this
// channel (its ctx), it fails at once with an *Error wrapping ErrInlineWait, sending nothing.
func (c *Channel) Request(ctx context.Context, method string, params any) (Result, error) {
	if c == nil { // Worker.Data without a data channel: see channel_absent.go
		return Result{}, absentError(ctx, "request", method)
	}
	if err := c.inlineWait(ctx, "request", method); err != nil {
		return Result{}, err
	}
	params, err := checkParams(params)
	if err != nil {
		return Result{}, err
	}
	// A handler calling its peer does not count against its channel's dispatch bound until the
	// answer is in (channel_bound.go).
	waiter := inflightFrom(ctx)
	waiter.waitingForPeer()
	defer waiter.doneWaiting()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return Result{}, &Error{Code: CodeChannelClosed, Message: c.name + " channel is closed", cause: ErrChannelClosed}
	}
	c.nextID++
	id := IntID(c.nextID)
	ch := make(chan outcome, 1)
	c.pending[id] = ch
	c.mu.Unlock()

	if ctx.Err() != nil { // ended already: nothing is sent
		c.forget(id)
		return Result{}, c.requestEnded(ctx, method)
	}
	err = c.sendOr(ctx.Done(), c.rpc.Request(id, method, params))
	switch {
	case errors.Is(err, errWithdrawn):
		c.forget(id)
		return Result{}, c.requestEnded(ctx, method)
	case errors.Is(err, errWriteStarted):
		c.forget(id)
		c.sendCancel(id)
		return Result{}, c.requestEnded(ctx, method)
	case err != nil:
		c.forget(id)
		return Result{}, named(err, "request")
	}
	select {
	case o := <-ch:
		return o.result, o.err
	case <-ctx.Done():
		c.forget(id)
		c.sendCancel(id)
		return Result{}, c.requestEnded(ctx, method)
	}
}

// sendCancel tells the peer to stop working on request id; its late response, if any, is dropped.
// It is sent in the background: a peer that stops reading must not hold up the caller. It waits
// for room in the write queue until the channel closes (the worker's shutdown closes its
// channels), then is dropped, with a debug log.
func (c *Channel) sendCancel(id ID) {
	go func() {
		err := c.sendOr(c.done, c.rpc.Notification("$/cancelRequest", map[string]any{"id": id.Value()}))
		if err != nil && !errors.Is(err, errWriteStarted) && c.logger != nil {
			c.logger.Debug(fmt.Sprintf("%s channel: dropped $/cancelRequest for request %s: %v", c.name, id, err), "channel", c.name)
		}
	}()
}

// requestEnded is the error of a request whose ctx ended first.
func (c *Channel) requestEnded(ctx context.Context, method string) error {
	code, what := CodeRequestCancelled, "cancelled"
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		code, what = CodeRequestTimeout, "timed out"
	}
	return &Error{Code: code, Message: fmt.Sprintf("request %q on the %s channel %s", method, c.name, what), cause: ctx.Err()}
}

// Notify sends the peer a notification. params follows the same rules as for Request. ctx bounds
// the send: a notification still waiting for room in the write queue, or still queued behind other
// frames, when ctx ends is never sent, and Notify returns an *Error with CodeRequestCancelled or CodeRequestTimeout wrapping
// ctx.Err(); one already being written is completed in the background (the error says so).
func (c *Channel) Notify(ctx context.Context, method string, params any) error {
	if c == nil {
		return absentError(ctx, "notification", method)
	}
	params, err := checkParams(params)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return c.notificationEnded(ctx, method, "before it was sent")
	}
	err = c.sendOr(ctx.Done(), c.rpc.Notification(method, params))
	switch {
	case errors.Is(err, errWithdrawn):
		return c.notificationEnded(ctx, method, "before it was sent")
	case errors.Is(err, errWriteStarted):
		return c.notificationEnded(ctx, method, "while it was being written (the peer will still receive it)")
	}
	return named(err, "notification")
}

func (c *Channel) notificationEnded(ctx context.Context, method, when string) error {
	code, what := CodeRequestCancelled, "cancelled"
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		code, what = CodeRequestTimeout, "timed out"
	}
	return &Error{Code: code, Message: fmt.Sprintf("notification %q on the %s channel %s %s", method, c.name, what, when), cause: ctx.Err()}
}

// named makes a size error say what was too large: "request of 5000 bytes exceeds ...".
func named(err error, what string) error {
	if fe := tooLarge(err); fe != nil {
		fe.what = what
	}
	return err
}

func (c *Channel) forget(id ID) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// checkParams rejects params that would make an invalid message: JSON-RPC params are an array or
// a map (a struct encodes as a map). A nil map, slice or pointer means "no params", like nil.
func checkParams(params any) (any, error) {
	switch p := params.(type) {
	case nil:
		return nil, nil
	case Params:
		return checkParams(p.Value())
	case Result:
		return checkParams(p.Value())
	}
	v := reflect.ValueOf(params)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil, nil
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Map:
		if v.IsNil() {
			return nil, nil
		}
		return params, nil
	case reflect.Struct, reflect.Array:
		return params, nil
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.Uint8 {
			if v.IsNil() {
				return nil, nil
			}
			return params, nil
		}
	}
	return nil, fmt.Errorf("aspectipc: params must be an array, a map or a struct, not %s", reflect.TypeOf(params))
}
