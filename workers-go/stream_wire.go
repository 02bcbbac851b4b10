package aspectipc

import "math"

// Stream wire shapes (PROTOCOL.md 13): parsing the $/stream descriptor of an opening request and
// the params of $/stream/* notifications. Pure functions, driven by spec/vectors/streams.json.

const (
	// DefaultStreamWindow is the window of a stream when none is given (PROTOCOL.md 13.3).
	DefaultStreamWindow = 16
	// MaxStreamWindow is the largest window, and the most credit a producer may hold.
	MaxStreamWindow = 1024
	// MaxOpenStreams is how many streams the peer may have open on one channel (13.8).
	MaxOpenStreams = 64

	streamMember = "$/stream"
)

// streamOpen is a valid $/stream descriptor: which streams a request opens.
type streamOpen struct {
	out    bool
	window int64 // the requester's window for the output stream
	in     bool
}

func (o streamOpen) count() int {
	n := 0
	if o.out {
		n++
	}
	if o.in {
		n++
	}
	return n
}

// parseStreamOpen looks for $/stream in a request's params. It returns the params without it,
// the descriptor (nil when the request opens no stream) and a reason when the descriptor is
// invalid (answered -32602, 13.1).
func parseStreamOpen(params any) (clean any, open *streamOpen, invalid string) {
	m, ok := params.(map[string]any)
	if !ok {
		return params, nil, ""
	}
	desc, ok := m[streamMember]
	if !ok {
		return params, nil, ""
	}
	rest := make(map[string]any, len(m)-1)
	for k, v := range m {
		if k != streamMember {
			rest[k] = v
		}
	}
	d, ok := desc.(map[string]any)
	if !ok {
		return rest, nil, "$/stream must be a map"
	}
	var o streamOpen
	for k, v := range d {
		switch k {
		case "out":
			om, ok := v.(map[string]any)
			if !ok {
				return rest, nil, "$/stream.out must be a map"
			}
			w, ok := wireInt(om["window"])
			if !ok || w < 1 || w > MaxStreamWindow {
				return rest, nil, "$/stream.out.window must be an integer from 1 to 1024"
			}
			for ok := range om {
				if ok != "window" {
					return rest, nil, "$/stream.out has an unknown member " + ok
				}
			}
			o.out, o.window = true, w
		case "in":
			im, ok := v.(map[string]any)
			if !ok || len(im) != 0 {
				return rest, nil, "$/stream.in must be an empty map"
			}
			o.in = true
		default:
			return rest, nil, "$/stream has an unknown member " + k
		}
	}
	if !o.in && !o.out {
		return rest, nil, "$/stream must hold out, in or both"
	}
	return rest, &o, ""
}

// wireInt returns an integer value (never a float) as an int64.
func wireInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

// streamMsgKind is what a $/stream/* notification is.
type streamMsgKind int

const (
	streamUnnamed   streamMsgKind = iota // names no stream: dropped
	streamMalformed                      // names a stream but breaks its shape: -32010 if open
	streamItem
	streamCredit
	streamEnd
	streamError
)

// streamMsg is a classified $/stream/* notification.
type streamMsg struct {
	kind   streamMsgKind
	stream ID
	dir    string // "out" or "in"
	seq    int64
	add    int64
	value  any
	err    *Error // $/stream/error
	why    string // what is malformed
}

// parseStreamMsg classifies the params of a $/stream/* notification (PROTOCOL.md 13.2).
func parseStreamMsg(method string, params any) streamMsg {
	p, ok := params.(map[string]any)
	if !ok {
		return streamMsg{}
	}
	id, ok := idOf(p["stream"])
	dir, _ := p["dir"].(string)
	if !ok || (dir != "out" && dir != "in") {
		return streamMsg{}
	}
	m := streamMsg{kind: streamMalformed, stream: id, dir: dir}
	switch method {
	case "$/stream/item":
		seq, ok := wireInt(p["seq"])
		value, has := p["value"]
		if !ok || seq < 0 || !has {
			m.why = "an item needs an integer seq >= 0 and a value"
			return m
		}
		m.kind, m.seq, m.value = streamItem, seq, value
	case "$/stream/credit":
		add, ok := wireInt(p["add"])
		if !ok || add < 1 {
			m.why = "a credit needs an integer add >= 1"
			return m
		}
		m.kind, m.add = streamCredit, add
	case "$/stream/end":
		if dir != "in" {
			m.why = "$/stream/end is sent for input streams only"
			return m
		}
		m.kind = streamEnd
	case "$/stream/error":
		if dir != "in" {
			m.why = "$/stream/error is sent for input streams only"
			return m
		}
		e, ok := p["error"].(map[string]any)
		code, okc := wireInt(e["code"])
		msg, okm := e["message"].(string)
		if !ok || !okc || !okm {
			m.why = "$/stream/error needs an error with an integer code and a string message"
			return m
		}
		m.kind, m.err = streamError, &Error{Code: int(code), Message: msg, Data: e["data"]}
	default:
		return streamMsg{}
	}
	return m
}
