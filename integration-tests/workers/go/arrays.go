package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"

	aspectipc "github.com/aspect-ipc/aspect-ipc/workers-go"
)

// sumArray and the decode hook of the data codec: the worker side of the numpy recipe
// (docs/codec-hooks.md, WORKERS.md). The parent sends {"__ndarray__": {"dtype": "<f8", "shape":
// [...], "data": bin}}; the hook turns a well-formed one into a []float64 read from the
// little-endian bytes, and leaves every other map as it is, so that it never fails a frame.

// dataMethods are the methods served on the data channel: all of methods, and sumArray, which
// needs binary (and the data codec's decode hook).
func dataMethods() aspectipc.HandlerTable {
	data := aspectipc.HandlerTable{"sumArray": sumArray}
	for name, h := range methods {
		data[name] = h
	}
	return data
}

// dataCodec is the data channel's codec: the plain one, plus the decode hook, which is given only
// the maps it converts (so that the params of the other methods stay on the SDK's fast path).
var dataCodec = aspectipc.MessagePackCodec{DecodeHook: ndarrayHook, DecodeHookKeys: []string{"__ndarray__"}}

func ndarrayHook(m map[string]any) (any, error) {
	if _, ok := m["__ndarray__"]; !ok || len(m) != 1 {
		return m, nil // the envelope, the params and every other map: as they are
	}
	if values, bad := float64Array(m); bad == "" {
		return values, nil
	}
	return m, nil
}

// float64Array reads an __ndarray__ map of dtype "<f8". When the map is not one, it returns what
// is wrong, naming the first wrong member (in the order of WORKERS.md) below "array".
func float64Array(v any) ([]float64, string) {
	outer, _ := v.(map[string]any)
	inner, ok := outer["__ndarray__"].(map[string]any)
	if !ok || len(outer) != 1 {
		return nil, fmt.Sprintf(`'array' must be a map {"__ndarray__": {"dtype": "<f8", "shape": [...], "data": bin}}, got %s`, kindOf(v))
	}
	if dtype, _ := inner["dtype"].(string); dtype != "<f8" {
		return nil, fmt.Sprintf(`'array.__ndarray__.dtype' must be "<f8", got %s`, describe(inner["dtype"]))
	}
	count, ok := elementCount(inner["shape"])
	if !ok {
		return nil, "'array.__ndarray__.shape' must be an array of integers >= 0, got " + describe(inner["shape"])
	}
	data, isBinary := inner["data"].([]byte)
	want := new(big.Int).Mul(count, big.NewInt(8))
	if !isBinary || !want.IsInt64() || want.Int64() != int64(len(data)) {
		got := kindOf(inner["data"])
		if isBinary {
			got = fmt.Sprintf("%d bytes", len(data))
		}
		return nil, fmt.Sprintf("'array.__ndarray__.data' must be binary of 8 × product(shape) = %s bytes, got %s", want, got)
	}
	values := make([]float64, len(data)/8)
	for i := range values {
		values[i] = math.Float64frombits(binary.LittleEndian.Uint64(data[8*i:]))
	}
	return values, ""
}

// elementCount is the product of a shape's dimensions (1 for []), or false when the shape is not
// an array of integers >= 0.
func elementCount(shape any) (*big.Int, bool) {
	dims, ok := shape.([]any)
	if !ok {
		return nil, false
	}
	count := big.NewInt(1)
	for _, d := range dims {
		n, ok := d.(int64)
		if !ok || n < 0 {
			return nil, false
		}
		count.Mul(count, big.NewInt(n))
	}
	return count, true
}

// describe names a wrong value for a message: a string quoted, anything else by its kind.
func describe(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return kindOf(v)
}

// sumArray adds the elements of "array" in float64, in index order, starting from 0.0.
func sumArray(_ context.Context, p aspectipc.Params) (any, error) {
	args, err := paramsOf("sumArray", p)
	if err != nil {
		return nil, err
	}
	values, ok := args.m["array"].([]float64)
	if _, present := args.m["array"]; !present {
		return nil, &aspectipc.Error{Code: aspectipc.CodeInvalidParams, Message: `Invalid params: sumArray: 'array' must be a map {"__ndarray__": {"dtype": "<f8", "shape": [...], "data": bin}}, got nothing`}
	}
	if !ok {
		// The hook left the map as it was: say which member is wrong.
		_, bad := float64Array(args.m["array"])
		return nil, &aspectipc.Error{Code: aspectipc.CodeInvalidParams, Message: "Invalid params: sumArray: " + bad}
	}
	sum := 0.0
	for _, x := range values {
		sum += x
	}
	return map[string]any{"sum": sum, "count": int64(len(values))}, nil
}
