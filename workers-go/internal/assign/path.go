package assign

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/structs"
)

// fieldPath is the state of one assign: where the value being decoded sits, for error messages
// (items[3].value), as a stack of segments pushed and popped around each step down and rendered
// only when an error is reported, so that decoding builds no strings; and the fields of the
// struct type decoded last, so that the elements of a slice of structs skip the shared cache, and
// the keys of the map walked last to fill one.
type fieldPath struct {
	segs       []pathSegment
	lastType   reflect.Type
	lastFields *structs.Set
	keys       keyMemos
	opts       Options
}

// fields returns structs.Of(t), remembering the last answer.
func (p *fieldPath) fields(t reflect.Type) *structs.Set {
	if t != p.lastType {
		p.lastType, p.lastFields = t, structs.Of(t)
	}
	return p.lastFields
}

type pathSegment struct {
	kind  pathKind
	key   string
	index int
}

type pathKind uint8

const (
	pathField pathKind = iota // .key, or key at the top
	pathEntry                 // .key always (map entries)
	pathIndex                 // [index]
)

func (p *fieldPath) push(kind pathKind, key string, index int) {
	p.segs = append(p.segs, pathSegment{kind: kind, key: key, index: index})
}

func (p *fieldPath) pop() { p.segs = p.segs[:len(p.segs)-1] }

func (p *fieldPath) String() string {
	var b strings.Builder
	for _, seg := range p.segs {
		switch {
		case seg.kind == pathIndex:
			b.WriteString("[" + strconv.Itoa(seg.index) + "]")
		case seg.kind == pathEntry || b.Len() > 0:
			b.WriteString("." + seg.key)
		default:
			b.WriteString(seg.key)
		}
	}
	return b.String()
}

func fieldError(path *fieldPath, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if p := path.String(); p != "" {
		msg = p + ": " + msg
	}
	return fmt.Errorf("%s", msg)
}

func mismatch(path *fieldPath, want reflect.Type, got any) error {
	return fieldError(path, "expected %s, got %s", kindName(want), KindName(got))
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "binary or an array"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "a map"
	}
	return t.String()
}

// KindName names the kind of a generic value for error messages: "a boolean", "an integer",
// "a float", "a string", "binary", "an array", "a map".
func KindName(v any) string {
	switch v.(type) {
	case bool:
		return "a boolean"
	case int64, uint64:
		return "an integer"
	case float64:
		return "a float"
	case string:
		return "a string"
	case []byte:
		return "binary"
	case []any:
		return "an array"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("%T", v)
}
