package msgpack

import "sync"

// Lazy is a member of a top-level map that DecodeLazy checked but did not decode: its bytes are
// known to decode (Value cannot fail), so that a caller who wants them in its own type decodes
// them once, straight into it (DecodeInto), without the generic value being built first.
type Lazy struct {
	// Raw is the member's encoding; it aliases the payload, as decoded binaries do.
	Raw []byte
	// FoldDups: some map inside may hold two keys that are equal but for ASCII case (or keys that
	// were not compared: non-ASCII ones). Decoding such a map into a struct would fill a field
	// twice, where the generic value keeps only the last of two equal keys: DecodeInto is then
	// not equivalent to decoding the generic value, and the caller must go through Value.
	FoldDups bool
	// Watched: the member is a map with the key DecodeLazy was asked to watch.
	Watched bool

	depth int // the number of containers around the member
	once  sync.Once
	value any
}

// Value returns the generic value of the member, as Decode would have returned it, decoded on
// the first call and kept: handlers may call it from several goroutines.
func (l *Lazy) Value() any {
	l.once.Do(func() {
		d := decoder{data: l.Raw}
		l.value, _ = d.value(l.depth) // checked when the payload was decoded
	})
	return l.value
}

// IsArray reports whether the member is an array.
func (l *Lazy) IsArray() bool {
	c := l.Raw[0]
	return c >= 0x90 && c <= 0x9f || c == 0xdc || c == 0xdd
}

// IsMap reports whether the member is a map.
func (l *Lazy) IsMap() bool {
	c := l.Raw[0]
	return c >= 0x80 && c <= 0x8f || c == 0xde || c == 0xdf
}

// lazyState is the decoder's part for DecodeLazy.
type lazyState struct {
	key        string // the top-level member to check rather than decode, or ""
	watchKey   string // a key of that member's map to look out for
	watchDepth int    // the depth of that member
	foldDups   bool   // what Lazy.FoldDups reports, for the member being checked
	watched    bool   // what Lazy.Watched reports, for the member being checked
	hooked     bool   // a map of the member being checked holds one of the hook's keys
	scratch    []keyRef
}

// DecodeLazy is Decode (without hook), except that when the payload is a map, its members named
// key are checked, not decoded: each is a *Lazy in the map. The payload is accepted or refused
// exactly as Decode accepts or refuses it, with the same error. watch, when not empty, is a key
// of the member's map that Lazy.Watched reports.
func DecodeLazy(payload []byte, key, watch string) (any, error) {
	return DecodeLazyHooked(payload, key, watch, nil, nil)
}

// DecodeLazyHooked is DecodeLazy for DecodeHooked with hook keys (hook nil: no hook): a member
// with a map holding one of hookKeys, which the hook must be given, is decoded at once (with the
// hook calls DecodeHooked makes, in the same order), not left as a *Lazy; the others hold no map
// the hook is given, so that their generic value is the hookless one. hookKeys must not be empty
// when hook is set.
func DecodeLazyHooked(payload []byte, key, watch string, hook DecodeHook, hookKeys []string) (any, error) {
	d := decoder{data: payload, hook: hook, hookKeys: hookKeys, lazy: lazyState{key: key, watchKey: watch}}
	return d.whole()
}

// lazyValue checks the member that starts at d.pos and returns it as a *Lazy.
func (d *decoder) lazyValue(depth int) (any, error) {
	start := d.pos
	d.lazy.foldDups, d.lazy.watched, d.lazy.watchDepth = false, false, depth
	err := d.check(depth)
	if d.lazy.hooked { // decoded as DecodeHooked does: a hook failure may come first
		d.pos, d.lazy.hooked = start, false
		return d.value(depth)
	}
	if err != nil {
		return nil, err
	}
	return &Lazy{Raw: d.data[start:d.pos:d.pos], FoldDups: d.lazy.foldDups, Watched: d.lazy.watched, depth: depth}, nil
}

// Check reads past the first object of data as Decode would read it, without building it: it
// fails where Decode fails, with the same error, and returns the object's size.
func Check(data []byte) (int, error) {
	d := decoder{data: data}
	err := d.check(0)
	return d.pos, err
}
