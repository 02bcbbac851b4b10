package main

// The seed's two data-channel methods (shared/seed/dual-channel-example.md): what the bench times
// against multiprocessing.Pipe, written as a Go user would write them.

import (
	"context"
	"fmt"

	aspectipc "github.com/aspect-ipc/aspect-ipc/workers-go"
)

// processItems decodes its params into the struct a Go user would write. A zero Value may stand
// for an absent or null "value", which every worker refuses: params with one, and those Decode
// refuses, go to checkedItems, which gives every worker's messages (and accepts, as every worker
// does, an "id" that is not an integer: no worker reads it).
func processItems(_ context.Context, p aspectipc.Params) (any, error) {
	var args struct {
		Items []struct {
			ID    int64   `json:"id"`
			Value float64 `json:"value"`
		} `json:"items"`
	}
	if err := p.Decode(&args); err != nil || args.Items == nil {
		return checkedItems(p)
	}
	sum := 0.0
	for _, item := range args.Items { // in order: every language must return the same bits
		if item.Value == 0 {
			return checkedItems(p)
		}
		sum += item.Value
	}
	return map[string]any{"processed": len(args.Items), "sum": sum}, nil
}

// checkedItems is processItems on the generic value, for the params Decode does not take as they are.
func checkedItems(p aspectipc.Params) (any, error) {
	if err := require("processItems", "items", "an array of {id, value} maps", p); err != nil {
		return nil, err
	}
	items := p.Value().(map[string]any)["items"].([]any)
	sum := 0.0
	for i, item := range items { // in order: every language must return the same bits
		m, _ := item.(map[string]any)
		value, err := members{method: "processItems", m: m}.float("value")
		if err != nil {
			return nil, &aspectipc.Error{Code: aspectipc.CodeInvalidParams, Message: fmt.Sprintf("Invalid params: processItems: items[%d] must be a map with a number \"value\"", i)}
		}
		sum += value
	}
	return map[string]any{"processed": len(items), "sum": sum}, nil
}

func processMatrix(_ context.Context, p aspectipc.Params) (any, error) {
	if err := require("processMatrix", "matrix", "an array of arrays of numbers", p); err != nil {
		return nil, err
	}
	var args struct {
		Matrix [][]float64 `json:"matrix"`
	}
	if err := p.Decode(&args); err != nil {
		return nil, err
	}
	rows, columns := len(args.Matrix), 0
	if rows > 0 {
		columns = len(args.Matrix[0])
	}
	if rows*columns == 0 {
		return nil, &aspectipc.Error{Code: aspectipc.CodeInvalidParams, Message: "Invalid params: matrix is empty"}
	}
	sum := 0.0
	for _, row := range args.Matrix { // row by row, in order
		for _, v := range row {
			sum += v
		}
	}
	return map[string]any{"sum": sum, "avg": sum / float64(rows*columns)}, nil
}
