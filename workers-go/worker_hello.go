package aspectipc

import (
	"crypto/subtle"
	"fmt"
	"os"
	"strings"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/assign"
)

// preHelloMaxFrameSize is the largest first frame a data connection may send before it is
// authenticated (PROTOCOL.md 7.4): a $/hello is tiny, and an unauthenticated peer must not make
// the worker buffer max_frame_size bytes.
const preHelloMaxFrameSize = 64 << 10

// helloInput is what decides the answer to the first frame of a data connection, or to a
// $/hello on the authenticated one.
type helloInput struct {
	msg           Message // the classified message (ignored when undecodable)
	undecodable   bool    // the frame did not decode
	later         bool    // not the first frame: a message on the authenticated connection
	token         []byte  // the expected token (ASPECT_IPC_TOKEN)
	supported     []int64 // the protocol versions the worker speaks
	workerID      string
	pid           int
	authenticated bool // another connection is authenticated already
}

// helloVerdict is the answer: a result (accept), an error, or nothing (silent); the connection
// stays open only when accepted (or when a later $/hello is refused).
type helloVerdict struct {
	accept   bool // the connection is (still) the authenticated one
	keepOpen bool
	silent   bool // no reply
	id       ID
	result   map[string]any
	err      *Error
}

// decideHello is the $/hello check (PROTOCOL.md 7.4), a pure function. The token is checked before
// anything else in the params, in constant time, so that an unauthenticated peer learns nothing
// more than "unauthorized"; errors never echo the token.
func decideHello(in helloInput) helloVerdict {
	msg := in.msg
	if in.later { // authenticated already: a second $/hello is refused, the connection kept
		if msg.Kind != KindRequest {
			return helloVerdict{accept: true, keepOpen: true, silent: true}
		}
		return helloVerdict{accept: true, keepOpen: true, id: msg.ID,
			err: &Error{Code: CodeInvalidRequest, Message: "Invalid Request: already authenticated"}}
	}
	if in.undecodable || msg.Kind != KindRequest {
		return helloVerdict{err: &Error{Code: CodeUnauthorized, Message: "unauthorized: the first message on a data connection must be a $/hello request"}}
	}
	refuse := func(code int, message string, data any) helloVerdict {
		return helloVerdict{id: msg.ID, err: &Error{Code: code, Message: message, Data: data}}
	}
	if msg.Method != "$/hello" {
		return refuse(CodeUnauthorized, "unauthorized: the first message on a data connection must be a $/hello request", nil)
	}
	params, _ := msg.Params.(map[string]any)
	token, isString := params["token"].(string)
	// ConstantTimeCompare reads every byte without an early exit; a length difference (which
	// reveals nothing: tokens have a fixed length) is a mismatch.
	if !isString || subtle.ConstantTimeCompare([]byte(token), in.token) != 1 {
		return refuse(CodeUnauthorized, "unauthorized", nil)
	}
	protocol, hasProtocol := params["protocol"]
	version, isInteger := integerOf(protocol)
	if !isInteger {
		return refuse(CodeInvalidParams, fmt.Sprintf("Invalid params: $/hello needs an integer protocol, not %s", describe(protocol, hasProtocol)), nil)
	}
	if !supports(in.supported, version) {
		supported := make([]any, len(in.supported))
		spoken := make([]string, len(in.supported))
		for i, v := range in.supported {
			supported[i] = v
			spoken[i] = fmt.Sprint(v)
		}
		// The words of every SDK: "worker speaks 1, parent speaks 2".
		return refuse(CodeProtocolMismatch, fmt.Sprintf("protocol version mismatch: worker speaks %s, parent speaks %s", strings.Join(spoken, ", "), version),
			map[string]any{"supported": supported})
	}
	if in.authenticated {
		return refuse(CodeUnauthorized, "data channel already connected", nil)
	}
	return helloVerdict{accept: true, keepOpen: true, id: msg.ID, result: map[string]any{
		"protocol": version.Value(), "workerId": in.workerID, "pid": int64(in.pid),
	}}
}

func supports(supported []int64, version ID) bool {
	for _, v := range supported {
		if IntID(v) == version {
			return true
		}
	}
	return false
}

func describe(v any, present bool) string {
	if !present {
		return "none"
	}
	if v == nil {
		return "null"
	}
	return assign.KindName(v)
}

// hello answers the first message of a data connection. It returns true when the connection is
// now the authenticated data channel; otherwise it has answered the error and the connection is
// closed. The hooks run, and onAuthenticated is called, before the response is written.
func (w *Worker) hello(ch *Channel, ev gateEvent, onAuthenticated func()) bool {
	in := helloInput{msg: ev.msg, undecodable: ev.err != nil, token: w.env.token,
		supported: []int64{ProtocolVersion}, workerID: w.env.workerID, pid: os.Getpid()}
	w.mu.Lock()
	in.authenticated = w.data != nil || w.stopping
	v := decideHello(in)
	if v.accept {
		w.data = ch
	}
	w.mu.Unlock()
	if !v.accept {
		w.warnf("data connection refused: %s", v.err.Message) // PROTOCOL.md 7.4, never the token
		ch.sendError(v.id, v.err)
		return false
	}
	onAuthenticated()
	if b, ok := ch.transport.(blocker); ok {
		b.block() // authenticated: its reads and writes park in the kernel (conn_blocking_unix.go)
	}
	w.hook("OnDataReady", w.cfg.Hooks.OnDataReady)
	w.ready()
	ch.respond(v.id, v.result, false)
	return true
}
