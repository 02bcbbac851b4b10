package aspectipc

import "errors"

// respond sends a result, or the error that replaces it when it cannot be sent (PROTOCOL.md 4.9);
// held, from an InlineGrouped handler on the read loop, until the read's other frames are handled.
func (c *Channel) respond(id ID, result any, held bool) {
	if err := c.room(nil); err != nil { // encoded only once there is room for it (PROTOCOL.md 4.5)
		c.log("cannot send the response to %s: %v", id, err)
		return
	}
	f, codecErr, framingErr := c.encodeFrame(wireResponse{id: id, result: result})
	if codecErr != nil || framingErr != nil {
		c.writer.unreserve()
	}
	if codecErr != nil {
		f.Release()
		c.sendError(id, &Error{Code: CodeInternalError, Message: "Internal error: the result cannot be encoded: " + codecErr.Error()})
		return
	}
	if framingErr != nil {
		f.Release()
		if fe := tooLarge(framingErr); fe != nil {
			c.sendReplacement(id, tooLargeError("response", fe))
			return
		}
		c.log("cannot frame the response to %s: %v", id, framingErr)
		return
	}
	var err error
	if held {
		err = c.hold(f)
	} else {
		err = c.write(f)
	}
	f.Release()
	if err != nil {
		c.log("cannot send the response to %s: %v", id, err)
	}
}

// tooLarge returns err as a size FramingError, or nil.
func tooLarge(err error) *FramingError {
	var fe *FramingError
	if errors.As(err, &fe) && (fe.Kind == FrameTooLarge || fe.Kind == LineTooLong) {
		return fe
	}
	return nil
}

// sendError sends an error response. If it cannot be sent as is, another one is, so that the
// request still gets its one response (PROTOCOL.md 4.9): -32603 when it cannot be encoded (its
// data or message has no form in the codec), -32005 when it is over the size limit.
func (c *Channel) sendError(id ID, e *Error) {
	err := c.send(c.rpc.ErrorResponse(id, e))
	var ce *CodecError
	if errors.As(err, &ce) {
		err = c.send(c.rpc.ErrorResponse(id, &Error{Code: CodeInternalError, Message: "Internal error: the error response cannot be encoded: " + ce.Error()}))
	}
	if fe := tooLarge(err); fe != nil {
		c.sendReplacement(id, tooLargeError("response", fe))
		return
	}
	if err != nil {
		c.log("cannot send the error response to %s: %v", id, err)
	}
}

// sendReplacement sends the -32005 error that replaces an oversized response. It is small by
// construction; if even it cannot be sent (an id nearly as long as the limit), that is logged.
func (c *Channel) sendReplacement(id ID, e *Error) {
	if err := c.send(c.rpc.ErrorResponse(id, e)); err != nil {
		c.log("cannot send the error response to %s: %v", id, err)
	}
}
