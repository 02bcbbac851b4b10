// Package structs lists the fields a struct maps to in a JSON object or MessagePack map, with
// encoding/json's naming rules, once per type. Both directions use it: internal/assign to decode
// into a struct, internal/msgpack to encode one, so that a struct reads back what it writes.
package structs

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// Field is one member of the object a struct maps to.
type Field struct {
	Name      string
	Index     []int // for reflect: the path to a field that may be promoted from an embedded struct
	OmitEmpty bool  // the `json:",omitempty"` option
}

// Set is the fields of one struct type.
type Set struct {
	// List holds the fields in declaration order; Sorted holds them by name, the order they are
	// encoded in (so that output is deterministic, as for maps).
	List   []Field
	Sorted []Field
	// Unmarshals: a pointer to the struct is a json.Unmarshaler or an encoding.TextUnmarshaler.
	Unmarshals bool
}

// Lookup returns the field that key decodes into: an exact match first, then a case-insensitive
// one, as encoding/json does; nil when there is none.
func (s *Set) Lookup(key string) *Field {
	for i := range s.List {
		if s.List[i].Name == key {
			return &s.List[i]
		}
	}
	for i := range s.List {
		if strings.EqualFold(s.List[i].Name, key) {
			return &s.List[i]
		}
	}
	return nil
}

var (
	cache               sync.Map // reflect.Type -> *Set
	jsonUnmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// Of returns the fields of struct type t: exported fields by `json` tag or name, "-" left out,
// embedded structs promoted (the shallowest field wins a name).
func Of(t reflect.Type) *Set {
	if cached, ok := cache.Load(t); ok {
		return cached.(*Set)
	}
	pt := reflect.PointerTo(t)
	set := &Set{Unmarshals: pt.Implements(jsonUnmarshalerType) || pt.Implements(textUnmarshalerType)}
	depth := map[string]int{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() && !(f.Anonymous && isStructOrPtrToStruct(f.Type)) {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && isStructOrPtrToStruct(f.Type) {
			continue // its fields are promoted and listed by VisibleFields
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if d, seen := depth[name]; seen && d <= len(f.Index) {
			continue
		}
		depth[name] = len(f.Index)
		set.List = append(set.List, Field{Name: name, Index: f.Index, OmitEmpty: hasOption(opts, "omitempty")})
	}
	set.Sorted = append([]Field(nil), set.List...)
	sort.Slice(set.Sorted, func(i, j int) bool { return set.Sorted[i].Name < set.Sorted[j].Name })
	cache.Store(t, set)
	return set
}

func hasOption(opts, want string) bool {
	for opts != "" {
		var opt string
		opt, opts, _ = strings.Cut(opts, ",")
		if opt == want {
			return true
		}
	}
	return false
}

func isStructOrPtrToStruct(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct
}

// FieldToFill walks v (a struct) to the field at index, a Field's Index, for decoding into it:
// an embedded pointer on the way that is nil gets a new struct. It fails when such a pointer
// cannot be set (a pointer to an unexported struct type).
func FieldToFill(v reflect.Value, index []int) (reflect.Value, error) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				if !v.CanSet() {
					return v, fmt.Errorf("cannot set an embedded pointer to an unexported struct %s", v.Type().Elem())
				}
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, nil
}
