package main

import (
	"fmt"
	"math"
	"time"

	aspectipc "github.com/aspect-ipc/aspect-ipc/workers-go"
)

// The checks of the test methods' params: wrong or missing params are -32602, with a message that
// names the member and what was expected (integration-tests/WORKERS.md).

// members reads the params of method as a map, for the checks below: wrong or missing params are
// -32602, naming the member and what was expected (WORKERS.md).
type members struct {
	method string
	m      map[string]any
}

func paramsOf(method string, p aspectipc.Params) (members, error) {
	m, ok := p.Value().(map[string]any)
	if !ok && p.Present() {
		return members{}, &aspectipc.Error{Code: aspectipc.CodeInvalidParams, Message: "Invalid params: " + method + ": params must be a map"}
	}
	return members{method: method, m: m}, nil
}

func (a members) invalid(name, what string) error {
	got := "nothing"
	if v, ok := a.m[name]; ok {
		got = kindOf(v)
	}
	return &aspectipc.Error{Code: aspectipc.CodeInvalidParams, Message: fmt.Sprintf("Invalid params: %s: %q must be %s, got %s", a.method, name, what, got)}
}

// number returns an integer (int64 or uint64) or a float64 member.
func (a members) number(name string) (any, error) {
	switch v := a.m[name].(type) {
	case int64, uint64, float64:
		return v, nil
	}
	return nil, a.invalid(name, "a number")
}

func (a members) float(name string) (float64, error) {
	v, err := a.number(name)
	switch x := v.(type) {
	case int64:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case float64:
		return x, nil
	}
	return 0, err
}

func (a members) integer(name string) (int64, error) {
	if v, ok := a.m[name].(int64); ok {
		return v, nil
	}
	return 0, a.invalid(name, "an integer")
}

func (a members) str(name string) (string, error) {
	if v, ok := a.m[name].(string); ok {
		return v, nil
	}
	return "", a.invalid(name, "a string")
}

// optionalStr is str for a member that may be absent.
func (a members) optionalStr(name string) (string, error) {
	if _, ok := a.m[name]; !ok {
		return "", nil
	}
	return a.str(name)
}

// stringParam reads the one string member of a method's params.
func stringParam(method, name string, p aspectipc.Params) (string, error) {
	args, err := paramsOf(method, p)
	if err != nil {
		return "", err
	}
	return args.str(name)
}

// require checks that the member name is an array; Params.Decode then checks its elements, naming
// the one that is wrong.
func require(method, name, what string, p aspectipc.Params) error {
	args, err := paramsOf(method, p)
	if err != nil {
		return err
	}
	if _, ok := args.m[name].([]any); !ok {
		return args.invalid(name, what)
	}
	return nil
}

// duration converts seconds to a time.Duration, saturating instead of overflowing.
func duration(seconds float64) time.Duration {
	if ns := seconds * float64(time.Second); ns < math.MaxInt64 {
		return time.Duration(ns)
	}
	return math.MaxInt64
}

// kindOf names the kind of a decoded value for error messages.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case int64, uint64:
		return "an integer"
	case float64:
		return "a float"
	case string:
		return "a string"
	case []byte:
		return "binary"
	case []any:
		return "an array"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("%T", v)
}
