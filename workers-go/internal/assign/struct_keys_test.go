package assign

import (
	"encoding/json"
	"reflect"
	"testing"
)

// The records have fewer fields than their maps have keys, so that they are filled by walking
// the map (and the keys are remembered); recordNest holds a recordInner.
type record struct {
	Value float64 `json:"value"`
}

type recordNest struct {
	Value float64     `json:"value"`
	Inner recordInner `json:"inner"`
}

type recordInner struct {
	Value string   `json:"value"`
	Tags  []string `json:"tags"`
}

type otherRecord struct {
	ID int64 `json:"id"`
}

// TestArraysOfRecordsDecodeAsEncodingJSONDoes: in arrays of maps decoded into structs, each
// element gets its own values whether its keys are those of the element before (the keys
// remembered from it are reused), differ from them in one key, in case only, in number, or come
// in a record of another type with the same keys; and errors name the element. encoding/json
// decoding the same text is the reference.
func TestArraysOfRecordsDecodeAsEncodingJSONDoes(t *testing.T) {
	t.Parallel()
	type target struct {
		Items  []record      `json:"items"`
		Nested []recordNest  `json:"nested"`
		Others []otherRecord `json:"others"`
		Same   []record      `json:"same"`
	}
	for _, input := range []string{
		`{"items":[{"id":1,"value":1.5},{"id":2,"value":2.5},{"id":3,"value":3.5}]}`,
		`{"items":[{"id":1,"value":1.5},{"id":2,"Value":2.5},{"id":3,"value":3.5},{"id":4,"VALUE":4.5}]}`,
		`{"items":[{"ID":1,"Value":1.5},{"ID":2,"Value":2.5}]}`,
		`{"items":[{"id":1,"value":1.5},{"id":2,"valuex":2.5},{"idx":3,"value":3.5},{"id":4,"value":4.5}]}`,
		`{"items":[{"id":1,"value":1.5},{"id":2},{"id":3,"value":3.5,"x":0},{},{"a":1,"b":2},{"a":1,"value":5}]}`,
		`{"nested":[{"k":1,"value":1,"inner":{"value":"a","tags":["t"],"x":0}},{"k":2,"value":2,"inner":{"value":"b","tags":null,"x":0}},{"k":3,"value":3,"inner":{"value":"c","Tags":["u","v"],"x":0}},{"k":4,"inner":{"x":0,"value":"d","tags":[]},"value":4},{"kk":5,"value":5,"inner":{"value":"e","y":0,"z":0}},{"kk":6,"value":6,"inner":{"value":"f","y":0,"z":0}}]}`,
		`{"items":[{"id":1,"value":1.5}],"others":[{"id":7,"value":1.5},{"id":8,"value":2.5}],"same":[{"id":1,"value":9.5}]}`,
		`{"items":[{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"value":1},{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"value":2}]}`,
		`{"items":[{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"value":1},{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"value":2}]}`,
		`{"items":[{"id":1,"value":1.5},{"id":2,"value":"x"}]}`,
		`{"nested":[{"k":1,"value":1,"inner":{"value":"a","x":0,"y":0}},{"k":2,"value":2,"inner":{"value":2,"x":0,"y":0}}]}`,
	} {
		generic, ok := genericOf([]byte(input))
		if !ok {
			t.Fatalf("%s: not JSON", input)
		}
		var want, got target
		wantErr := json.Unmarshal([]byte(input), &want)
		gotErr := Into(&got, generic, Options{EncodeJSON: json.Marshal})
		if (wantErr == nil) != (gotErr == nil) {
			t.Errorf("%s: encoding/json says %v, Into says %v", input, wantErr, gotErr)
			continue
		}
		if wantErr == nil && !reflect.DeepEqual(want, got) {
			t.Errorf("%s:\nencoding/json %+v\nInto          %+v", input, want, got)
		}
	}
	var items []record
	err := Into(&items, []any{
		map[string]any{"id": int64(1), "value": 1.5},
		map[string]any{"id": int64(2), "value": 2.5},
		map[string]any{"id": int64(3), "value": "x"},
	}, Options{EncodeJSON: json.Marshal})
	if err == nil || err.Error() != "[2].value: expected a number, got a string" {
		t.Errorf("got %v, want the error at [2].value", err)
	}
}
