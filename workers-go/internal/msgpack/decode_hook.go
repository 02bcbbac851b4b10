package msgpack

import "strconv"

// DecodeHook is given each decoded map, innermost first; what it returns replaces the map.
type DecodeHook func(map[string]any) (any, error)

// HookError is a decode hook's failure, with the place of the map it was given.
type HookError struct {
	// Err is the hook's error, or the value it panicked with when that is an error (nil for
	// another panic value).
	Err error
	// failure is how the hook failed, for the message: its error, or its panic.
	failure *HookFailure
	// reversed holds the path segments innermost first, as EncodeError's.
	reversed []string
}

// Error implements the error interface.
func (e *HookError) Error() string {
	return "decode hook failed at " + ShortPath(e.Path()) + ": " + e.failure.text()
}

// Unwrap returns the hook's error.
func (e *HookError) Unwrap() error { return e.Err }

// Path is the place of the map the hook failed on, JSONPath style ($.params.array).
func (e *HookError) Path() string { return (&EncodeError{reversed: e.reversed}).Path() }

func (d *decoder) callHook(m map[string]any) (any, error) { return CallHook(d.hook, m) }

// hookWants reports whether the hook is given m: always, or when m holds one of the hook's keys.
func (d *decoder) hookWants(m map[string]any) bool {
	if len(d.hookKeys) == 0 {
		return true
	}
	for _, k := range d.hookKeys {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

// isHookKey reports whether a key of a checked map is one of the hook's keys.
func (d *decoder) isHookKey(key []byte) bool {
	for _, k := range d.hookKeys {
		if k == string(key) {
			return true
		}
	}
	return false
}

// CallHook gives m to hook, turning its failure (an error or a panic, see callHook) into a
// *HookError.
func CallHook(hook DecodeHook, m map[string]any) (any, error) {
	v, failure := callHook(hook, m)
	if failure != nil {
		return nil, &HookError{Err: failure.Err, failure: failure}
	}
	return v, nil
}

// HookErrorAt adds the index i (or the key, when i < 0), around which err happened, to the path
// of a hook's error; other errors are returned as they are.
func HookErrorAt(err error, i int, key string) error {
	he, ok := err.(*HookError)
	if !ok {
		return err
	}
	if i >= 0 {
		he.reversed = append(he.reversed, "["+strconv.Itoa(i)+"]")
	} else {
		he.reversed = append(he.reversed, keySegment(key))
	}
	return he
}
