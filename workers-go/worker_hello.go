package aspectipc

import (
	"crypto/subtle"
	"fmt"
	"os"
)

// hello checks the first message of a data connection (PROTOCOL.md 7.4). It returns true when the
// connection is now the authenticated data channel; otherwise it has answered the error and the
// connection is closed. The hooks run, and onAuthenticated is called, before the response is
// written.
func (w *Worker) hello(ch *Channel, ev gateEvent, onAuthenticated func()) bool {
	msg := ev.msg
	if ev.err != nil || msg.Kind != KindRequest || msg.Method != "$/hello" {
		id := ID{}
		if ev.err == nil && msg.Kind == KindRequest {
			id = msg.ID
		}
		w.logf("data connection refused: the first message is not a $/hello request")
		ch.sendError(id, &Error{Code: CodeUnauthorized, Message: "unauthorized: the first message on a data connection must be a $/hello request"})
		return false
	}
	params, _ := msg.Params.(map[string]any)
	token, _ := params["token"].(string)
	// ConstantTimeCompare reads every byte without an early exit; a length difference (which
	// reveals nothing: tokens have a fixed length) is a mismatch.
	if subtle.ConstantTimeCompare([]byte(token), w.env.token) != 1 {
		w.logf("data connection refused: wrong or missing token")
		ch.sendError(msg.ID, &Error{Code: CodeUnauthorized, Message: "unauthorized"})
		return false
	}
	if v, ok := integerOf(params["protocol"]); !ok || v != IntID(ProtocolVersion) {
		ch.sendError(msg.ID, &Error{
			Code:    CodeProtocolMismatch,
			Message: fmt.Sprintf("protocol version mismatch: worker speaks %d, parent speaks %v", ProtocolVersion, params["protocol"]),
			Data:    map[string]any{"supported": supportedProtocols},
		})
		return false
	}
	if !w.claimData(ch) {
		w.logf("data connection refused: a data channel is already connected")
		ch.sendError(msg.ID, &Error{Code: CodeUnauthorized, Message: "data channel already connected"})
		return false
	}
	onAuthenticated()
	call(w.cfg.Hooks.OnDataReady)
	w.allReady()
	ch.respond(msg.ID, map[string]any{"protocol": ProtocolVersion, "workerId": w.env.workerID, "pid": os.Getpid()})
	return true
}

// claimData makes ch the authenticated data channel unless another one is.
func (w *Worker) claimData(ch *Channel) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.data != nil || w.stopping {
		return false
	}
	w.data = ch
	return true
}
