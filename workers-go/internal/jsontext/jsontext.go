// Package jsontext checks JSON text for what encoding/json lets through and the protocol refuses.
package jsontext

import "fmt"

// What encoding/json lets through and the protocol refuses (PROTOCOL.md 3.1): it replaces an
// escaped lone surrogate ("\ud800") by U+FFFD and accepts nesting up to 10000 levels. Scan
// finds both in one pass over the text, for the decoder (which then fails) and for the encoder
// (whose output may hold what a json.Marshaler wrote), of the JSON codec and of the MessagePack
// encoder, which writes the value a json.Marshaler's text holds.

// Scan returns what is wrong with syntactically valid JSON text, or "" if nothing is: nesting
// deeper than maxDepth containers, or a \u escape of a surrogate that is not half of a high+low
// pair.
func Scan(b []byte, maxDepth int) string {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '[', '{':
			depth++
			if depth > maxDepth {
				return fmt.Sprintf("nesting deeper than %d levels", maxDepth)
			}
		case ']', '}':
			depth--
		case '"':
			end, problem := scanString(b, i+1)
			if problem != "" {
				return problem
			}
			i = end
		}
	}
	return ""
}

// scanString scans the string whose content starts at b[i] and returns the index of its
// closing quote, or what is wrong with it.
func scanString(b []byte, i int) (int, string) {
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			return i, ""
		case '\\':
			i++
			if i >= len(b) || b[i] != 'u' {
				continue
			}
			u := Hex4(b, i+1)
			switch {
			case u >= 0xd800 && u <= 0xdbff:
				if i+10 < len(b) && b[i+5] == '\\' && b[i+6] == 'u' {
					if low := Hex4(b, i+7); low >= 0xdc00 && low <= 0xdfff {
						i += 10 // the pair
						continue
					}
				}
				return i, fmt.Sprintf(`lone surrogate \u%04x in a string: strings are sequences of Unicode scalar values`, u)
			case u >= 0xdc00 && u <= 0xdfff:
				return i, fmt.Sprintf(`lone surrogate \u%04x in a string: strings are sequences of Unicode scalar values`, u)
			}
			i += 4
		}
	}
	return i, ""
}

// Hex4 reads the 4 hex digits at b[i:], or returns -1.
func Hex4(b []byte, i int) int {
	if i+4 > len(b) {
		return -1
	}
	v := 0
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | int(c-'A'+10)
		default:
			return -1
		}
	}
	return v
}
