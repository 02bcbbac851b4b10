package assign

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestStructFieldsFoundWhateverTheShapeOfTheMap: a struct is filled the same way whether it has
// fewer, as many or more fields than the map has keys (the decoding looks the fields up, or walks
// the map, depending on that): exact names, case-insensitive ones, unknown keys ignored, errors
// naming the field.
func TestStructFieldsFoundWhateverTheShapeOfTheMap(t *testing.T) {
	t.Parallel()
	type pair struct {
		ID    int64   `json:"id"`
		Value float64 `json:"value"`
	}
	type wide struct {
		ID    int64   `json:"id"`
		Value float64 `json:"value"`
		A, B  string
		C     *int64 `json:"c"`
	}
	opts := Options{EncodeJSON: json.Marshal}
	for _, c := range []struct {
		name  string
		in    map[string]any
		want  pair
		wantW wide
	}{
		{"exact", map[string]any{"id": int64(1), "value": 2.5}, pair{1, 2.5}, wide{ID: 1, Value: 2.5}},
		{"folded", map[string]any{"ID": int64(1), "Value": 2.5}, pair{1, 2.5}, wide{ID: 1, Value: 2.5}},
		{"mixed", map[string]any{"iD": int64(1), "value": 2.5}, pair{1, 2.5}, wide{ID: 1, Value: 2.5}},
		{"unknown", map[string]any{"id": int64(1), "other": "x"}, pair{ID: 1}, wide{ID: 1}},
		{"fewer", map[string]any{"value": 2.5}, pair{Value: 2.5}, wide{Value: 2.5}},
		{"more", map[string]any{"id": int64(1), "value": 2.5, "a": "x", "b": "y", "extra": true}, pair{1, 2.5}, wide{ID: 1, Value: 2.5, A: "x", B: "y"}},
		{"empty", map[string]any{}, pair{}, wide{}},
	} {
		var got pair
		if err := Into(&got, c.in, opts); err != nil || got != c.want {
			t.Errorf("%s: got %+v (%v), want %+v", c.name, got, err, c.want)
		}
		var gotW wide
		if err := Into(&gotW, c.in, opts); err != nil || !reflect.DeepEqual(gotW, c.wantW) {
			t.Errorf("%s: got %+v (%v), want %+v", c.name, gotW, err, c.wantW)
		}
		var items []pair
		if err := Into(&items, []any{c.in, c.in}, opts); err != nil || len(items) != 2 || items[1] != c.want {
			t.Errorf("%s in an array: got %+v (%v), want %+v twice", c.name, items, err, c.want)
		}
	}
	var items []pair
	err := Into(&items, []any{map[string]any{"id": int64(1), "value": 1.0}, map[string]any{"id": "x", "value": 1.0}}, opts)
	if err == nil || err.Error() != "[1].id: expected an integer, got a string" {
		t.Errorf("got %v, want the error at [1].id", err)
	}
}
