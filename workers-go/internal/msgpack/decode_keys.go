package msgpack

import "unicode/utf8"

// keyCache remembers the map keys already read from one payload, so that a key repeated in every
// element of an array of maps (the "value" of a thousand {"id": i, "value": x}) is allocated and
// checked for UTF-8 once per payload rather than once per map.
//
// It belongs to one decoder, and a decoder to one Decode call: nothing is shared between
// goroutines and nothing outlives the payload. Its size is fixed: a key hashes to a set of two
// slots, which hold the last two keys that hashed there, so a peer sending many distinct keys only
// makes it miss; it costs one hash and up to two comparisons per key, never memory. (Two ways
// rather than one, so that two keys of the same maps that happen to share a set do not evict each
// other on every map.)
type keyCache [2 * keyCacheSets]string

const (
	keyCacheSets = 16 // a power of two
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
	set := c[2*((h^h>>16)&(keyCacheSets-1)):][:2]
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
