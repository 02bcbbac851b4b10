package msgpack

// Envelope is what TopLevelMembers finds at the top level of a payload that failed to decode.
type Envelope struct {
	// ID is the value of "id" (nil when absent or unreadable).
	ID any
	// MethodIsString says whether "method" is a (readable) string.
	MethodIsString bool
	// HasMethod says whether a "method" member is present, whatever its value.
	HasMethod bool
	// HasAnswer says whether a "result" or an "error" member is present; their values are never
	// read, for they are what may have failed to decode.
	HasAnswer bool
}

// TopLevelMembers reads the members "id" and "method" of a payload that failed to decode, and
// notes whether it has a "method", "result" or "error" member (PROTOCOL.md 4.8): when payload is
// one readable map (ok), it returns what it found. The other members, and the values of "result"
// and "error", are skipped without being decoded, so what made the decoding fail in them (an ext
// type, a non-string key, invalid UTF-8, deep nesting) does not hide the id.
func TopLevelMembers(payload []byte) (env Envelope, ok bool) {
	d := decoder{data: payload}
	c, err := d.byte1()
	if err != nil {
		return Envelope{}, false
	}
	var n uint64
	switch {
	case c >= 0x80 && c <= 0x8f:
		n = uint64(c & 0x0f)
	case c == 0xde || c == 0xdf:
		if n, err = d.uintN(2 << (c - 0xde)); err != nil {
			return Envelope{}, false
		}
	default:
		return Envelope{}, false
	}
	for i := uint64(0); i < n; i++ {
		keyStart := d.pos
		key, err := d.key(i)
		if err != nil { // a refused key (not a string, invalid UTF-8): step over the member
			d.pos = keyStart
			key = ""
			if d.skip() != nil {
				return Envelope{}, false
			}
		}
		switch key {
		case "method":
			env.HasMethod = true
		case "result", "error":
			env.HasAnswer = true
		}
		if key != "id" && key != "method" {
			if d.skip() != nil {
				return Envelope{}, false
			}
			continue
		}
		start := d.pos
		v, err := d.value(1)
		if err != nil {
			d.pos = start
			if d.skip() != nil {
				return Envelope{}, false
			}
			v = nil
		}
		if key == "id" {
			env.ID = v
		} else {
			_, env.MethodIsString = v.(string)
		}
	}
	if d.pos != len(d.data) {
		return Envelope{}, false // trailing bytes: not one readable map
	}
	return env, true
}

// Skip reads past the first object of data without decoding it, and returns its size.
func Skip(data []byte) (int, error) {
	d := decoder{data: data}
	err := d.skip()
	return d.pos, err
}

// skip moves past one object without decoding it: only its structure is read (so ext types,
// non-string keys and invalid UTF-8 are stepped over), iteratively, so no nesting can exhaust the
// stack. Declared lengths are checked against the bytes present.
func (d *decoder) skip() error {
	for remaining := uint64(1); remaining > 0; remaining-- {
		c, err := d.byte1()
		if err != nil {
			return err
		}
		var skipBytes, items uint64
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		case c >= 0xa0 && c <= 0xbf:
			skipBytes = uint64(c & 0x1f)
		case c >= 0x90 && c <= 0x9f:
			items = uint64(c & 0x0f)
		case c >= 0x80 && c <= 0x8f:
			items = 2 * uint64(c&0x0f)
		case c >= 0xcc && c <= 0xcf:
			skipBytes = 1 << (c - 0xcc)
		case c >= 0xd0 && c <= 0xd3:
			skipBytes = 1 << (c - 0xd0)
		case c == 0xca:
			skipBytes = 4
		case c == 0xcb:
			skipBytes = 8
		case c >= 0xd4 && c <= 0xd8: // fixext: type byte + 1..16 bytes
			skipBytes = 1 + 1<<(c-0xd4)
		case c >= 0xd9 && c <= 0xdb: // str 8/16/32
			skipBytes, err = d.uintN(1 << (c - 0xd9))
		case c >= 0xc4 && c <= 0xc6: // bin 8/16/32
			skipBytes, err = d.uintN(1 << (c - 0xc4))
		case c >= 0xc7 && c <= 0xc9: // ext 8/16/32: length, type byte, data
			skipBytes, err = d.uintN(1 << (c - 0xc7))
			skipBytes++
		case c == 0xdc || c == 0xdd:
			if items, err = d.uintN(2 << (c - 0xdc)); err != nil {
				return err
			}
		case c == 0xde || c == 0xdf:
			if items, err = d.uintN(2 << (c - 0xde)); err != nil {
				return err
			}
			items *= 2
		default:
			return structuralf("byte 0x%02x is never used in MessagePack", c)
		}
		if err != nil {
			return err
		}
		if err := d.need(skipBytes, "object"); err != nil {
			return err
		}
		d.pos += int(skipBytes)
		// Every item takes at least one byte: more than the bytes left is truncated.
		if err := d.need(remaining-1+items, "container"); err != nil {
			return err
		}
		remaining += items
	}
	return nil
}
