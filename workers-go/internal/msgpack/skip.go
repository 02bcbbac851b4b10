package msgpack

// TopLevelMembers reads the members "id" and "method" of a payload that failed to decode
// (PROTOCOL.md 4.8): when payload is one readable map (ok), it returns the value of its "id" (nil
// when absent or unreadable) and whether its "method" is a string. The other members are skipped
// without being decoded, so what made the decoding fail in them (an ext type, a non-string key,
// invalid UTF-8, deep nesting) does not hide the id.
func TopLevelMembers(payload []byte) (id any, methodIsString bool, ok bool) {
	d := decoder{data: payload}
	c, err := d.byte1()
	if err != nil {
		return nil, false, false
	}
	var n uint64
	switch {
	case c >= 0x80 && c <= 0x8f:
		n = uint64(c & 0x0f)
	case c == 0xde || c == 0xdf:
		if n, err = d.uintN(2 << (c - 0xde)); err != nil {
			return nil, false, false
		}
	default:
		return nil, false, false
	}
	methodOK := false
	for i := uint64(0); i < n; i++ {
		keyStart := d.pos
		key, err := d.key(i)
		if err != nil { // a refused key (not a string, invalid UTF-8): step over the member
			d.pos = keyStart
			key = ""
			if d.skip() != nil {
				return nil, false, false
			}
		}
		if key != "id" && key != "method" {
			if d.skip() != nil {
				return nil, false, false
			}
			continue
		}
		start := d.pos
		v, err := d.value(1)
		if err != nil {
			d.pos = start
			if d.skip() != nil {
				return nil, false, false
			}
			v = nil
		}
		if key == "id" {
			id = v
		} else {
			_, methodOK = v.(string)
		}
	}
	if d.pos != len(d.data) {
		return nil, false, false // trailing bytes: not one readable map
	}
	return id, methodOK, true
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
