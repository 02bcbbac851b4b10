package msgpack

import "math"

// signed reads the int 8/16/32/64 that byte c starts.
func (d *decoder) signed(c byte) (any, error) {
	n, err := d.signedInt(c)
	if err != nil {
		return nil, err
	}
	return n, nil
}

// signedInt is signed unboxed (boxing allocates), for DecodeInto.
func (d *decoder) signedInt(c byte) (int64, error) {
	size := 1 << (c - 0xd0)
	u, err := d.uintN(size)
	if err != nil {
		return 0, err
	}
	shift := 64 - 8*size // sign-extend from the size read
	return int64(u<<shift) >> shift, nil
}

// float reads the float 32/64 that byte c starts: both are float64 values.
func (d *decoder) float(c byte) (any, error) {
	f, err := d.float64(c)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// float64 is float unboxed (boxing allocates), for DecodeInto.
func (d *decoder) float64(c byte) (float64, error) {
	if c == 0xca {
		u, err := d.uintN(4)
		if err != nil {
			return 0, err
		}
		return float64(math.Float32frombits(uint32(u))), nil
	}
	u, err := d.uintN(8)
	if err != nil {
		return 0, err
	}
	return math.Float64frombits(u), nil
}
