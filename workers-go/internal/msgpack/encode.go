package msgpack

import (
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/outframe"
)

// Encoder writes the protocol's MessagePack mapping (PROTOCOL.md 3.2): integers in their shortest
// format, floats always as float 64, []byte as bin, maps with string keys only (sorted, so that
// output is deterministic), structs as maps keyed by their `json` tags, with encoding/json's
// rules. It writes in one pass, straight from the value: there is no intermediate form.
type Encoder struct {
	Buf []byte
	// Refs, when set, receives the binaries of outframe.RefMinSize bytes or more instead of Buf:
	// their headers are written, their bytes spliced in at that point when the frame is written.
	Refs *[]outframe.Ref
	// Hook, when set, is given each value whose type has no form in the mapping (time.Time, a
	// chan, a map with non-string keys...) and returns the value to write instead, which is
	// written as usual (and may need the hook again, MaxHookDepth times at most).
	Hook func(any) (any, error)
	// hops counts the pointers followed on the way to the value being written, to stop on a
	// cycle that holds no container.
	hops int
	// hookDepth counts the applications of Hook around the value being written.
	hookDepth int
	// lastType is the type ownOf looked up last, and lastEncoding its encoding.
	lastType     reflect.Type
	lastEncoding typeEncoding
}

// maxEncodeHops bounds hops: a chain of pointers that long is a cycle.
const maxEncodeHops = 10000

// Appender is a type that writes its own encoding, so that the codec need not know it (the SDK's
// responses, Params, Result). It appends to buf, and to refs as Encoder.Refs, with an Encoder of
// its own: an Encoder handed to an interface method would escape to the heap on every message.
// depth is the number of containers around the value, for Encode.
type Appender interface {
	AppendMsgpack(buf []byte, refs *[]outframe.Ref, depth int) ([]byte, error)
}

func depthError() error {
	return invalid("value", fmt.Sprintf(" is nested deeper than %d levels (a cycle?)", MaxNestingDepth))
}

// Encode writes v; depth is the number of containers around it (0 for a whole payload).
func (e *Encoder) Encode(v any, depth int) error {
	switch x := v.(type) {
	case nil:
		e.Buf = append(e.Buf, 0xc0)
	case bool:
		if x {
			e.Buf = append(e.Buf, 0xc3)
		} else {
			e.Buf = append(e.Buf, 0xc2)
		}
	case int64:
		e.writeInt(x)
	case int:
		e.writeInt(int64(x))
	case uint64:
		e.writeUint(x)
	case float64:
		e.writeFloat(x)
	case string:
		return e.writeString(x)
	case []byte:
		e.writeBin(x)
	case []any:
		if depth >= MaxNestingDepth {
			return depthError()
		}
		e.writeArrayHeader(len(x))
		for i, item := range x {
			if err := e.Encode(item, depth+1); err != nil {
				return AtIndex(err, i)
			}
		}
	case map[string]any:
		if depth >= MaxNestingDepth {
			return depthError()
		}
		var small [8]string // messages and most params fit: no allocation to sort their keys
		keys := small[:0]
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		e.writeMapHeader(len(keys))
		for _, k := range keys {
			if err := e.writeString(k); err != nil {
				return err
			}
			if err := e.Encode(x[k], depth+1); err != nil {
				return AtKey(err, k)
			}
		}
	case *big.Int:
		if x == nil {
			e.Buf = append(e.Buf, 0xc0)
			return nil
		}
		return e.writeBig(x)
	case json.Number:
		n, err := JSONNumber(string(x))
		if err != nil {
			return err
		}
		return e.Encode(n, depth)
	case Appender:
		if rv := reflect.ValueOf(x); rv.Kind() == reflect.Pointer && rv.IsNil() {
			e.Buf = append(e.Buf, 0xc0) // a nil *Params or *Result: null, as for any nil pointer
			return nil
		}
		if v, ok := x.(valuer); ok && e.Hook != nil {
			// Params and Result write their value with an Encoder of their own, without the hook.
			return e.Encode(v.Value(), depth)
		}
		buf, err := x.AppendMsgpack(e.Buf, e.Refs, depth)
		e.Buf = buf
		return err
	default:
		return e.encodeReflect(reflect.ValueOf(v), depth)
	}
	return nil
}

// valuer is an Appender that holds a generic value (Params, Result).
type valuer interface{ Value() any }

// JSONNumber is the integer (int64, or uint64 above math.MaxInt64) or float64 that s, the text of
// a JSON number (a json.Number), holds; an *EncodeError when the protocol has no such number (an
// integer outside [-2^63, 2^64-1], a float beyond float64). The JSON codec judges what a
// MarshalJSON wrote with it too, so that both codecs refuse the same numbers in the same words.
func JSONNumber(s string) (any, error) {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return u, nil
		}
		return nil, &EncodeError{Kind: IntegerRange, Subject: "integer " + truncateForError(s), Predicate: " is outside [-2^63, 2^64-1]"}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, invalid("number "+truncateForError(s), " does not fit a 64-bit float")
	}
	return f, nil
}
