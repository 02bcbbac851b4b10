package assign

import (
	"reflect"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/structs"
)

// keyMemos remember, for a couple of struct types, the keys of the last map that was walked to
// fill one, when each of them either names a field exactly or names none, not even
// case-insensitively. The maps of an array of records usually have the same keys: a later map
// that has exactly those keys fills the same fields from the same keys, so it can be filled by
// looking each key up, without walking the map again (walking a map costs more than looking a few
// keys up in it). Two types rather than one, so that records holding records of another type do
// not evict each other; up to memoKeys keys, so that a memo is a fixed size and remembering
// allocates nothing.
//
// They belong to the fieldPath of one Into, so nothing is shared between goroutines.
type keyMemos struct {
	memos [2]keyMemo
	next  int // the memo that a type not remembered yet replaces
}

const memoKeys = 8

type keyMemo struct {
	typ  reflect.Type // nil when the memo is free
	n    int
	keys [memoKeys]string
	// field holds the index in the struct's fields of the field each key names, -1 for none;
	// the keys that name fields come first, in the fields' order.
	field [memoKeys]int
}

// fill fills dst from m when m has exactly the keys remembered for the type of dst, and reports
// whether it did. The remembered keys are distinct (they are the keys of a map), so when m has as
// many keys and holds each of them, it has no other.
func (km *keyMemos) fill(dst reflect.Value, m map[string]any, fields *structs.Set, path *fieldPath) (bool, error) {
	t := dst.Type()
	memo := &km.memos[0]
	if memo.typ != t {
		if memo = &km.memos[1]; memo.typ != t {
			return false, nil
		}
	}
	if len(m) != memo.n {
		return false, nil
	}
	var items [memoKeys]any
	for i, k := range memo.keys[:memo.n] {
		item, found := m[k]
		if !found {
			return false, nil
		}
		items[i] = item
	}
	for i := 0; i < memo.n && memo.field[i] >= 0; i++ {
		f := &fields.List[memo.field[i]]
		if err := assignField(dst, f, f.Name, items[i], path); err != nil {
			return true, err
		}
	}
	return true, nil
}

// remember records the n keys of a map just walked to fill a struct of type t, every one of which
// names a field exactly (the index of which is in field) or names none (-1).
func (km *keyMemos) remember(t reflect.Type, keys *[memoKeys]string, field *[memoKeys]int, n int) {
	i := km.next
	if km.memos[0].typ == t {
		i = 0
	} else if km.memos[1].typ == t {
		i = 1
	} else {
		km.next = 1 - km.next
	}
	memo := &km.memos[i]
	*memo = keyMemo{typ: t, n: n, keys: *keys, field: *field}
	// An insertion sort of a few keys, by field index, the keys that name none last.
	rank := func(j int) uint { return uint(memo.field[j]) } // -1 ranks last
	for j := 1; j < n; j++ {
		for k := j; k > 0 && rank(k) < rank(k-1); k-- {
			memo.keys[k], memo.keys[k-1] = memo.keys[k-1], memo.keys[k]
			memo.field[k], memo.field[k-1] = memo.field[k-1], memo.field[k]
		}
	}
}

// assignStructByWalk fills dst by walking m, looking each key up among the fields; when every key
// names a field exactly or none, it remembers the keys for the next map (see keyMemos). The keys
// are gathered here, not in the memo, because the fields filled meanwhile may be structs too.
func assignStructByWalk(dst reflect.Value, m map[string]any, fields *structs.Set, path *fieldPath) error {
	var keys [memoKeys]string
	var field [memoKeys]int
	n, trusted := 0, len(m) <= memoKeys
	for k, item := range m {
		f := fields.Lookup(k)
		if trusted {
			keys[n], field[n] = k, fieldIndex(fields, f)
			n++
		}
		if f == nil {
			continue
		}
		trusted = trusted && f.Name == k // a case-insensitive match: walk such maps every time
		if err := assignField(dst, f, k, item, path); err != nil {
			return err
		}
	}
	if trusted {
		path.keys.remember(dst.Type(), &keys, &field, n)
	}
	return nil
}

// fieldIndex returns the index of f among fields, -1 for nil.
func fieldIndex(fields *structs.Set, f *structs.Field) int {
	for i := range fields.List {
		if &fields.List[i] == f {
			return i
		}
	}
	return -1
}
