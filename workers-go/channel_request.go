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
// CodeRequestTimeout or CodeRequestCancelled (wrapping ctx.Err()) when ctx ends first, in which
// case the peer is sent $/cancelRequest; an *Error with CodeChannelClosed (wrapping
// ErrChannelClosed) when the channel closes first; a *CodecError or *FramingError when the request
// cannot be sent (nothing is written then).
func (c *Channel) Request(ctx context.Context, method string, params any) (Result, error) {
	params, err := checkParams(params)
	if err != nil {
		return Result{}, err
	}
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

	if err := c.send(c.rpc.Request(id, method, params)); err != nil {
		c.forget(id)
		return Result{}, named(err, "request")
	}
	select {
	case o := <-ch:
		return o.result, o.err
	case <-ctx.Done():
		c.forget(id)
		// Tell the peer to stop working on it; its late response, if any, is dropped.
		_ = c.send(c.rpc.Notification("$/cancelRequest", map[string]any{"id": id.Value()}))
		code, what := CodeRequestCancelled, "cancelled"
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			code, what = CodeRequestTimeout, "timed out"
		}
		return Result{}, &Error{Code: code, Message: fmt.Sprintf("request %q on the %s channel %s", method, c.name, what), cause: ctx.Err()}
	}
}

// Notify sends the peer a notification. params follows the same rules as for Request.
func (c *Channel) Notify(method string, params any) error {
	params, err := checkParams(params)
	if err != nil {
		return err
	}
	return named(c.send(c.rpc.Notification(method, params)), "notification")
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
