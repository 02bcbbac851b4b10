package aspectipc

import (
	"fmt"
	"math"
	"reflect"
	"strconv"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/msgpack"
	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/outframe"
)

// ID is a JSON-RPC request id: a string, an integer in [-2^63, 2^64-1], or null (the zero value,
// which only appears in error responses). IDs are comparable, so they can be map keys; an integer
// id equals another by value whatever the integer type it was decoded as.
type ID struct {
	kind idKind
	num  int64  // idInt
	unum uint64 // idUint: integers above math.MaxInt64
	str  string // idString
}

type idKind uint8

const (
	idNull idKind = iota
	idInt
	idUint
	idString
)

// IntID returns the integer id n.
func IntID(n int64) ID { return ID{kind: idInt, num: n} }

// StringID returns the string id s.
func StringID(s string) ID { return ID{kind: idString, str: s} }

// IsNull reports whether the id is null.
func (id ID) IsNull() bool { return id.kind == idNull }

// Value returns the id as it goes on the wire: nil, int64, uint64 or string.
func (id ID) Value() any {
	switch id.kind {
	case idInt:
		return id.num
	case idUint:
		return id.unum
	case idString:
		return id.str
	}
	return nil
}

// String renders the id for messages: 7, "a-1", null.
func (id ID) String() string {
	switch id.kind {
	case idInt:
		return strconv.FormatInt(id.num, 10)
	case idUint:
		return strconv.FormatUint(id.unum, 10)
	case idString:
		return strconv.Quote(id.str)
	}
	return "null"
}

// idOf returns the id a value represents, if it is a string or an integer.
func idOf(v any) (ID, bool) {
	if s, ok := v.(string); ok {
		return StringID(s), true
	}
	if n, ok := integerOf(v); ok {
		return n, true
	}
	return ID{}, false
}

// integerOf returns an integer value as an ID-shaped number (floats are never integers here).
func integerOf(v any) (ID, bool) {
	switch x := v.(type) {
	case int64:
		return IntID(x), true
	case uint64:
		if x > math.MaxInt64 {
			return ID{kind: idUint, unum: x}, true
		}
		return IntID(int64(x)), true
	case int:
		return IntID(int64(x)), true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return IntID(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return integerOf(rv.Uint())
	}
	return ID{}, false
}

// MessageKind is what a decoded value is, per PROTOCOL.md 4.2.
type MessageKind uint8

// The message kinds.
const (
	// KindInvalid: not a valid message; see Message.InvalidCode and Message.Reply.
	KindInvalid MessageKind = iota
	// KindRequest: method and id; expects exactly one response.
	KindRequest
	// KindNotification: method, no id; never answered.
	KindNotification
	// KindResponse: id and result.
	KindResponse
	// KindErrorResponse: id (maybe null) and error.
	KindErrorResponse
)

// String returns the kind's name as used by spec/vectors/jsonrpc.json.
func (k MessageKind) String() string {
	return [...]string{"invalid", "request", "notification", "response", "error_response"}[k]
}

// Message is a classified JSON-RPC message.
type Message struct {
	// Kind says which of the members below are meaningful.
	Kind MessageKind
	// ID is the request or response id; for an invalid message, the id extracted for the error
	// reply (null when none could be).
	ID ID
	// Method is the method of a request or notification.
	Method string
	// Params is the params member of a request or notification (nil when absent).
	Params any
	// HasParams reports whether the params member was present.
	HasParams bool
	// Result is the result of a response.
	Result any
	// Error is the error of an error response.
	Error *Error
	// InvalidCode is the error code for an invalid message (CodeInvalidRequest).
	InvalidCode int
	// Reply reports whether an invalid message is answered (false for invalid responses).
	Reply bool
	// Reason says why a message is invalid, for the error reply's message.
	Reason string

	// lazy holds the params of a message the channel decoded itself from MessagePack: checked,
	// not decoded, Params nil until materialize (see Channel.dispatchPayload).
	lazy *msgpack.Lazy
}

// materialize builds the generic value of lazy params into Params, for the code that reads them.
func (m *Message) materialize() {
	if m.lazy != nil {
		m.Params, m.lazy = m.lazy.Value(), nil
	}
}

// params returns what a handler is given.
func (m *Message) params() Params {
	return Params{value: m.Params, present: m.HasParams, lazy: m.lazy}
}

// JSONRPCProtocol is the JSON-RPC 2.0 profile of the protocol (PROTOCOL.md section 4): it
// classifies decoded values and builds the messages to send. It is pure: no I/O, no state.
type JSONRPCProtocol struct{}

// Classify validates a decoded value in the order fixed by PROTOCOL.md 4.2 and says what it is.
func (JSONRPCProtocol) Classify(value any) Message {
	if isArray(value) {
		return invalid(ID{}, true, "batches are not supported")
	}
	m, ok := value.(map[string]any)
	if !ok {
		return invalid(ID{}, true, "a message must be a map")
	}
	rawID, hasID := m["id"]
	extracted, idValid := idOf(rawID)
	if !hasID || !idValid {
		extracted = ID{}
	}
	if v, ok := m["jsonrpc"].(string); !ok || v != "2.0" {
		_, hasMethod := m["method"]
		_, hasResult := m["result"]
		_, hasError := m["error"]
		// A message that looks like a response is never answered, so that two peers cannot
		// answer each other's broken responses forever.
		return invalid(extracted, hasMethod || !(hasResult || hasError), `"jsonrpc" must be the string "2.0"`)
	}
	if rawMethod, hasMethod := m["method"]; hasMethod {
		return classifyCall(m, rawMethod, hasID, extracted)
	}
	_, hasResult := m["result"]
	rawError, hasError := m["error"]
	if !hasResult && !hasError {
		return invalid(extracted, true, "a message needs a method, a result or an error")
	}
	return classifyResponse(rawID, hasID, idValid, hasResult, m["result"], hasError, rawError)
}

func classifyCall(m map[string]any, rawMethod any, hasID bool, extracted ID) Message {
	method, ok := rawMethod.(string)
	if !ok {
		return invalid(extracted, true, `"method" must be a string`)
	}
	_, hasResult := m["result"]
	_, hasError := m["error"]
	if hasResult || hasError {
		return invalid(extracted, true, "a request must not carry a result or an error")
	}
	if hasID && extracted.IsNull() {
		return invalid(ID{}, true, `"id" must be a string or an integer`)
	}
	params, hasParams := m["params"]
	lazy, isLazy := params.(*msgpack.Lazy)
	if isLazy && !lazy.IsArray() && !lazy.IsMap() || !isLazy && hasParams && !isArray(params) && !isMap(params) {
		return invalid(extracted, true, `"params" must be an array or a map`)
	}
	msg := Message{Kind: KindNotification, Method: method, Params: params, HasParams: hasParams}
	if isLazy {
		msg.Params, msg.lazy = nil, lazy
	}
	if hasID {
		msg.Kind, msg.ID = KindRequest, extracted
	}
	return msg
}

func classifyResponse(rawID any, hasID, idValid, hasResult bool, result any, hasError bool, rawError any) Message {
	extracted := ID{}
	if idValid {
		extracted, _ = idOf(rawID)
	}
	switch {
	case !hasID:
		return invalid(ID{}, false, `a response needs an "id"`)
	case rawID != nil && !idValid:
		return invalid(ID{}, false, `"id" must be a string, an integer or null`)
	case hasResult && hasError:
		return invalid(extracted, false, "a response carries exactly one of result and error")
	case hasResult && rawID == nil:
		return invalid(ID{}, false, `"id" may be null only in an error response`)
	case hasResult:
		return Message{Kind: KindResponse, ID: extracted, Result: result}
	}
	e, ok := rawError.(map[string]any)
	if !ok {
		return invalid(extracted, false, `"error" must be a map`)
	}
	code, ok := integerOf(e["code"])
	if !ok || code.kind != idInt || code.num < math.MinInt32 || code.num > math.MaxInt32 {
		return invalid(extracted, false, `"error.code" must be an integer`)
	}
	text, ok := e["message"].(string)
	if !ok {
		return invalid(extracted, false, `"error.message" must be a string`)
	}
	return Message{Kind: KindErrorResponse, ID: extracted, Error: &Error{Code: int(code.num), Message: text, Data: e["data"]}}
}

func invalid(id ID, reply bool, reason string) Message {
	return Message{Kind: KindInvalid, ID: id, InvalidCode: CodeInvalidRequest, Reply: reply, Reason: reason}
}

func isArray(v any) bool {
	if _, ok := v.([]any); ok {
		return true
	}
	rv := reflect.ValueOf(v)
	return (rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() != reflect.Uint8) || rv.Kind() == reflect.Array
}

func isMap(v any) bool {
	if _, ok := v.(map[string]any); ok {
		return true
	}
	return reflect.ValueOf(v).Kind() == reflect.Map
}

// Request builds a request message; params nil leaves the params member out.
func (JSONRPCProtocol) Request(id ID, method string, params any) map[string]any {
	m := map[string]any{"jsonrpc": "2.0", "id": id.Value(), "method": method}
	if params != nil {
		m["params"] = params
	}
	return m
}

// Notification builds a notification message; params nil leaves the params member out.
func (JSONRPCProtocol) Notification(method string, params any) map[string]any {
	m := map[string]any{"jsonrpc": "2.0", "method": method}
	if params != nil {
		m["params"] = params
	}
	return m
}

// Response builds a success response.
func (JSONRPCProtocol) Response(id ID, result any) map[string]any {
	return map[string]any{"jsonrpc": "2.0", "id": id.Value(), "result": result}
}

// wireResponse is the success response Response builds, for the SDK's MessagePack encoder, which
// writes it without building the map, with the same bytes (the members in the order of their
// sorted names). Other codecs are given Response's map.
type wireResponse struct {
	id     ID
	result any
}

// AppendMsgpack writes the response map, its members in the order of their sorted names.
func (r wireResponse) AppendMsgpack(buf []byte, refs *[]outframe.Ref, depth int) ([]byte, error) {
	if depth >= msgpack.MaxNestingDepth {
		return buf, fmt.Errorf("value nested deeper than %d levels (a cycle?)", msgpack.MaxNestingDepth)
	}
	e := msgpack.Encoder{Buf: buf, Refs: refs}
	e.WriteMapHeader(3)
	e.Buf = append(e.Buf, 0xa2, 'i', 'd')
	if err := e.Encode(r.id.Value(), depth+1); err != nil {
		return e.Buf, err
	}
	e.Buf = append(e.Buf, 0xa7, 'j', 's', 'o', 'n', 'r', 'p', 'c', 0xa3, '2', '.', '0', 0xa6, 'r', 'e', 's', 'u', 'l', 't')
	err := e.Encode(r.result, depth+1)
	return e.Buf, err
}

// ErrorResponse builds an error response; id may be null.
func (JSONRPCProtocol) ErrorResponse(id ID, err *Error) map[string]any {
	e := map[string]any{"code": err.Code, "message": err.Message}
	if err.Data != nil {
		e["data"] = err.Data
	}
	return map[string]any{"jsonrpc": "2.0", "id": id.Value(), "error": e}
}

// invalidRequestError is the error reply for an invalid message.
func invalidRequestError(msg Message) *Error {
	return &Error{Code: msg.InvalidCode, Message: fmt.Sprintf("Invalid Request: %s", msg.Reason)}
}
