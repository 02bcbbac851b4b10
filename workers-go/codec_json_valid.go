package aspectipc

import "github.com/aspect-ipc/aspect-ipc/workers-go/internal/jsontext"

// encoding/json refuses text nested deeper than 10000 levels as a syntax error, but such text is
// valid JSON: its -32700 answer must still carry the request's id (PROTOCOL.md 4.8). validJSON
// checks the syntax alone, iteratively, with no limit on nesting; jsonValueEnd then walks text
// known to be valid.

// validJSON reports whether b is exactly one JSON text (RFC 8259), surrounded by whitespace at
// most. It does not check UTF-8 (Decode does) nor what the escapes stand for.
func validJSON(b []byte) bool {
	var stack []byte // the open containers: '[' or '{'
	i := skipJSONSpace(b, 0)
	for {
		// A value starts at i (after '[', ',' or ':').
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case '{', '[':
			open, end := b[i], byte(']')
			if open == '{' {
				end = '}'
			}
			i = skipJSONSpace(b, i+1)
			if i < len(b) && b[i] == end {
				i++
				break
			}
			stack = append(stack, open)
			if open == '{' {
				if i = jsonMemberValue(b, i); i < 0 {
					return false
				}
			}
			continue
		case '"':
			if i = jsonStringEnd(b, i); i < 0 {
				return false
			}
		default:
			if i = jsonScalarEnd(b, i); i < 0 {
				return false
			}
		}
		// After a value: close containers, or go on to the next element.
		for {
			i = skipJSONSpace(b, i)
			if len(stack) == 0 {
				return i == len(b)
			}
			if i >= len(b) {
				return false
			}
			top := stack[len(stack)-1]
			if b[i] == ']' && top == '[' || b[i] == '}' && top == '{' {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return false
			}
			i = skipJSONSpace(b, i+1)
			if top == '{' {
				if i = jsonMemberValue(b, i); i < 0 {
					return false
				}
			}
			break
		}
	}
}

// jsonMemberValue reads `"key" :` at b[i] and returns where the member's value starts, or -1.
func jsonMemberValue(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = jsonStringEnd(b, i); i < 0 {
		return -1
	}
	if i = skipJSONSpace(b, i); i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipJSONSpace(b, i+1)
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// jsonStringEnd returns the index after the string starting at b[i] (a '"'), or -1.
func jsonStringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			i++
			if i >= len(b) {
				return -1
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if jsontext.Hex4(b, i+1) < 0 {
					return -1
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

// jsonScalarEnd returns the index after the literal or number starting at b[i], or -1.
func jsonScalarEnd(b []byte, i int) int {
	for _, lit := range []string{"true", "false", "null"} {
		if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
			return i + len(lit)
		}
	}
	// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
	digits := func(j int) int {
		k := j
		for k < len(b) && b[k] >= '0' && b[k] <= '9' {
			k++
		}
		return k
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

// jsonValueEnd returns the index after the value starting at b[i], in text known to be valid.
func jsonValueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return jsonStringEnd(b, i)
	case '[', '{':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = jsonStringEnd(b, i) - 1
			case '[', '{':
				depth++
			case ']', '}':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	return jsonScalarEnd(b, i)
}
