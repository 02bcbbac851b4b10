package msgpack

import (
	"encoding"
	"encoding/json"
	"reflect"
	"sync"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/structs"
)

// plan is how DecodeInto fills values of one Go type, worked out once per type. Its rules are
// internal/assign's (which fills a type from the generic value), restricted to the types whose
// filling depends on nothing but the bytes; for the others (supported is false anywhere below a
// target type) the caller decodes the generic value and assigns it.
type plan struct {
	typ  reflect.Type
	kind reflect.Kind
	elem *plan // pointer, slice, array and map elements
	// bytesElem: a slice of the predeclared byte, which bin fills; shareBytes: exactly []byte,
	// which gets the bin itself (assign's ShareBinary) rather than a copy.
	bytesElem, shareBytes bool
	fields                []fieldPlan // struct
	supported             bool        // this type, not counting the types below it
}

// fieldPlan is one field of a struct plan.
type fieldPlan struct {
	name      string
	nameBytes []byte // for the case-insensitive match: compared with a key without a copy
	index     []int
	plan      *plan
}

var (
	plans      sync.Map // reflect.Type -> *plan, each complete
	rootOK     sync.Map // reflect.Type -> bool: every plan below the type is supported
	plansBuild sync.Mutex

	jsonUnmarshaler = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	byteType        = reflect.TypeOf(byte(0))
	bytesType       = reflect.TypeOf([]byte(nil))
)

// planFor returns the plan of t and whether DecodeInto can fill t.
func planFor(t reflect.Type) (*plan, bool) {
	if ok, found := rootOK.Load(t); found {
		p, _ := plans.Load(t)
		return p.(*plan), ok.(bool)
	}
	plansBuild.Lock()
	defer plansBuild.Unlock()
	building := map[reflect.Type]*plan{}
	p := buildPlan(t, building)
	for typ, bp := range building { // published complete: readers never see a plan being built
		plans.Store(typ, bp)
	}
	ok := allSupported(p, map[*plan]bool{})
	rootOK.Store(t, ok)
	return p, ok
}

// buildPlan makes the plan of t and of the types below it; building holds the plans made so far,
// so that a recursive type (a tree of nodes) refers to its own plan.
func buildPlan(t reflect.Type, building map[reflect.Type]*plan) *plan {
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	if p, ok := building[t]; ok {
		return p
	}
	p := &plan{typ: t, kind: t.Kind(), supported: true}
	building[t] = p
	if pt := reflect.PointerTo(t); t.Kind() != reflect.Interface && (pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler)) {
		p.supported = false // it decodes itself, from JSON text: assign hands it that
		return p
	}
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
	case reflect.Interface:
		p.supported = t.NumMethod() == 0 // a generic value fits no other interface
	case reflect.Pointer, reflect.Array:
		p.elem = buildPlan(t.Elem(), building)
	case reflect.Slice:
		p.elem = buildPlan(t.Elem(), building)
		if t.Elem().Kind() == reflect.Uint8 {
			// bin is copied into a slice of another byte type with reflect.Copy, which needs
			// the element types identical: left to assign.
			p.bytesElem, p.shareBytes = t.Elem() == byteType, t == bytesType
			p.supported = p.bytesElem
		}
	case reflect.Map:
		p.elem = buildPlan(t.Elem(), building)
		switch t.Key().Kind() {
		case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		default:
			p.supported = false
		}
	case reflect.Struct:
		for _, f := range structs.Of(t).List {
			p.fields = append(p.fields, fieldPlan{
				name: f.Name, nameBytes: []byte(f.Name), index: f.Index,
				plan: buildPlan(t.FieldByIndex(f.Index).Type, building),
			})
		}
	default: // chan, func, complex, unsafe.Pointer: assign refuses them
		p.supported = false
	}
	return p
}

// allSupported reports whether p and every plan below it are supported.
func allSupported(p *plan, seen map[*plan]bool) bool {
	if seen[p] {
		return true
	}
	seen[p] = true
	if !p.supported {
		return false
	}
	if p.elem != nil && !allSupported(p.elem, seen) {
		return false
	}
	for i := range p.fields {
		if !allSupported(p.fields[i].plan, seen) {
			return false
		}
	}
	return true
}
