package msgpack

import "unicode/utf8"

// keyCache remembers the map keys already read from one payload, so that a key repeated in every
// element of an array of maps (the "value" of a thousand {"id": i, "value": x}) is allocated and
// checked for UTF-8 once per payload rather than once per map.
//
// It belongs to one decoder, and a decoder to one Decode call: nothing is shared between
// goroutines and nothing outlives the payload. Its size is fixed, so a peer sending many distinct
// keys only makes it miss; it never costs memory. Two levels:
//
//   - byPlace holds, for each of the first places of a map, the key read there last. The maps of
//     an array usually have the same keys in the same order, so the key at place i is most often
//     the one the map before had at place i: one comparison finds it, without hashing.
//   - Otherwise a key hashes to a set of two slots, which hold the last two keys that hashed
//     there; it costs one hash and up to two comparisons. (Two ways rather than one, so that two
//     keys of the same maps that happen to share a set do not evict each other on every map.)
type keyCache struct {
	byPlace [keyCachePlaces]string
	sets    [2 * keyCacheSets]string
}

const (
	keyCachePlaces = 8  // records are small maps
	keyCacheSets   = 16 // a power of two
	// maxCachedKeyLen: longer keys are rare, and hashing them costs about what copying does.
	maxCachedKeyLen = 32
)

// key returns b as a string, the one already made for the same bytes when there is one. b must
// be a key of at most maxCachedKeyLen bytes.
func (c *keyCache) key(b []byte) (string, error) {
	h := uint32(2166136261) // FNV-1a
	for _, x := range b {
		h = (h ^ uint32(x)) * 16777619
	}
	set := c.sets[2*((h^h>>16)&(keyCacheSets-1)):][:2]
	// The comparisons allocate nothing (the conversions are only compared), and a string found
	// was checked for UTF-8 when it was stored (or is "", the empty slot's).
	if set[0] == string(b) {
		return set[0], nil
	}
	if set[1] == string(b) {
		return set[1], nil
	}
	if !utf8.Valid(b) {
		return "", mappingf("str is not valid UTF-8")
	}
	set[1], set[0] = set[0], string(b)
	return set[0], nil
}

// keyStr reads a map key of n bytes: an envelope name without allocating, another short key
// through the cache, a long one as any string.
func (d *decoder) keyStr(n uint64) (string, error) {
	if n > maxCachedKeyLen {
		return d.str(n)
	}
	b, err := d.bytesN(n, "str")
	if err != nil {
		return "", err
	}
	if s, ok := envelopeString(b); ok {
		return s, nil
	}
	return d.keys.key(b)
}

// keyLength reads a key's str header and returns its length; a key of another type is refused.
func (d *decoder) keyLength() (uint64, error) {
	c, err := d.byte1()
	if err != nil {
		return 0, err
	}
	switch {
	case c >= 0xa0 && c <= 0xbf:
		return uint64(c & 0x1f), nil
	case c >= 0xd9 && c <= 0xdb:
		return d.uintN(1 << (c - 0xd9))
	}
	d.pos--
	return 0, mappingf("map key of type %s: only string keys are allowed", typeName(c))
}

// key reads the key at place of its map.
func (d *decoder) key(place uint64) (string, error) {
	n, err := d.keyLength()
	if err != nil {
		return "", err
	}
	if place >= keyCachePlaces {
		return d.keyStr(n)
	}
	// The comparison allocates nothing, and a string found was checked for UTF-8 when it was
	// stored (or is "", an empty slot's).
	if n <= uint64(len(d.data)-d.pos) {
		if s := d.keys.byPlace[place]; s == string(d.data[d.pos:d.pos+int(n)]) {
			d.pos += int(n)
			return s, nil
		}
	}
	s, err := d.keyStr(n)
	if err == nil {
		d.keys.byPlace[place] = s
	}
	return s, err
}
