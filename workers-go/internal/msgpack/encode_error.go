package msgpack

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// EncodeErrorKind says why a value could not be encoded, so that the codec can give advice.
type EncodeErrorKind uint8

// The kinds of EncodeError.
const (
	// Unsupported: the value's type has no form in the mapping (time.Time, chan, func, complex).
	Unsupported EncodeErrorKind = iota
	// NonStringKey: a map key that is not a string; Key holds it as text, Type its type.
	NonStringKey
	// IntegerRange: an integer outside [-2^63, 2^64-1]; Msg says which.
	IntegerRange
	// HookFailed: the encode hook returned an error, in Err.
	HookFailed
	// HookLoop: the values returned by the encode hook still needed it MaxHookDepth times over.
	HookLoop
	// Invalid: any other failure (invalid UTF-8, nesting, a failing MarshalText); Msg says what.
	Invalid
)

// MaxHookDepth is how many nested applications of the encode hook one value may take: a hook that
// keeps returning values it cannot encode (itself, say) fails there rather than looping.
const MaxHookDepth = 64

// EncodeError is an encoding failure, with the place of the value that failed. The place is
// gathered on the way out of the failed encoding, one segment per container, so that a successful
// encoding never builds it.
type EncodeError struct {
	Kind EncodeErrorKind
	// Type is the type of the value that failed (of the key, for NonStringKey); nil when unknown.
	Type reflect.Type
	// Key is the offending map key, as text (NonStringKey).
	Key string
	// Subject and Predicate say what failed, for IntegerRange and Invalid: the message is the
	// subject, the place, then the predicate ("integer 2^70", " is outside [-2^63, 2^64-1]").
	Subject, Predicate string
	// Err is the hook's error (HookFailed), or the value it panicked with when that is an error;
	// the error of a MarshalJSON or MarshalText method (Invalid).
	Err error
	// failure is how the hook failed (HookFailed), for the message: its error, or its panic.
	failure *HookFailure
	// reversed holds the path segments innermost first: ".when", "[3]", ".rows", ".params".
	reversed []string
}

// Error implements the error interface: what failed, where, and why.
func (e *EncodeError) Error() string {
	switch e.Kind {
	case Unsupported:
		return "cannot encode " + TypeName(e.Type) + " at " + e.place()
	case NonStringKey:
		if e.Key == "" {
			return "map at " + e.place() + " has keys of type " + TypeName(e.Type) + ": keys must be strings"
		}
		return "map key " + e.Key + " at " + e.place() + " is " + TypeName(e.Type) + ": keys must be strings"
	case HookFailed:
		return "encode hook failed on " + TypeName(e.Type) + " at " + e.place() + ": " + e.hookText()
	case HookLoop:
		return "encode hook returned a value it cannot encode (" + TypeName(e.Type) + " at " + e.place() + ", after " + strconv.Itoa(MaxHookDepth) + " applications)"
	}
	return e.Subject + " at " + e.place() + e.Predicate
}

// hookText states the hook's failure: its error, or its panic.
func (e *EncodeError) hookText() string {
	if e.failure != nil {
		return e.failure.text()
	}
	return e.Err.Error()
}

// Unwrap returns the hook's error, if any.
func (e *EncodeError) Unwrap() error { return e.Err }

// Path is the place of the failed value in the value encoded, JSONPath style: $ for the value
// itself, $.params.rows[3].when, $["a b"] for a key that is not an identifier.
func (e *EncodeError) Path() string {
	var b strings.Builder
	b.WriteByte('$')
	for i := len(e.reversed) - 1; i >= 0; i-- {
		b.WriteString(e.reversed[i])
	}
	return b.String()
}

// place is the Path for a message: a path longer than maxPlaceLength (a value nested hundreds of
// levels deep) keeps its two ends, so that the message stays short enough to be sent.
func (e *EncodeError) place() string { return ShortPath(e.Path()) }

const maxPlaceLength = 120

// ShortPath shortens a long path for a message: $.a[0][0]...[0].b.
func ShortPath(path string) string {
	if len(path) <= maxPlaceLength {
		return path
	}
	head, tail := maxPlaceLength/2, len(path)-maxPlaceLength/2
	for head > 0 && !utf8.RuneStart(path[head]) { // cut between characters, never inside one
		head--
	}
	for tail < len(path) && !utf8.RuneStart(path[tail]) {
		tail++
	}
	return path[:head] + "..." + path[tail:]
}

// TypeName names a type for messages: "time.Time", "map[int]string", "nil".
func TypeName(t reflect.Type) string {
	if t == nil {
		return "nil"
	}
	return t.String()
}

// AtKey adds the map key or field name k, around which err happened, to err's path. Errors that
// are not *EncodeError (those of a foreign Appender) become Invalid ones.
func AtKey(err error, k string) error { return at(err, keySegment(k)) }

// AtIndex adds the array index i, around which err happened, to err's path.
func AtIndex(err error, i int) error { return at(err, "["+strconv.Itoa(i)+"]") }

func at(err error, segment string) error {
	var ee *EncodeError
	if !errors.As(err, &ee) {
		ee = &EncodeError{Kind: Invalid, Subject: "value", Predicate: ": " + err.Error()}
	}
	ee.reversed = append(ee.reversed, segment)
	return ee
}

// keySegment is .k for an identifier, ["k"] (JSON string syntax) for anything else.
func keySegment(k string) string {
	if isIdentifier(k) {
		return "." + k
	}
	return "[" + quoteKey(k) + "]"
}

func isIdentifier(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		letter := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// quoteKey quotes k as a JSON string would be (the bytes of invalid UTF-8 as \u00XX escapes of
// their values, so that the path stays valid text).
func quoteKey(k string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range k {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0xfffd:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// invalid is an Invalid error: "<subject> at <path><predicate>".
func invalid(subject, predicate string) *EncodeError {
	return &EncodeError{Kind: Invalid, Subject: subject, Predicate: predicate}
}
