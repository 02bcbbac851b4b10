package aspectipc

import (
	"errors"
	"testing"
)

// TestParamsDecodeNamesTheOffendingField: the error of Params.Decode says where the bad value is,
// through struct fields, slice and array elements, and map entries.
func TestParamsDecodeNamesTheOffendingField(t *testing.T) {
	t.Parallel()
	type item struct {
		ID    int64   `json:"id"`
		Value float64 `json:"value"`
	}
	var args struct {
		Items  []item             `json:"items"`
		Pair   [2]item            `json:"pair"`
		ByName map[string][]int64 `json:"byName"`
	}
	good := map[string]any{"id": int64(1), "value": 1.5}
	for want, value := range map[string]any{
		"items[1].value: expected a number, got a string": map[string]any{"items": []any{good, map[string]any{"value": "x"}}},
		"pair[0].id: expected an integer, got a float":    map[string]any{"pair": []any{map[string]any{"id": 1.5}}},
		"byName.k[2]: expected an integer, got a string":  map[string]any{"byName": map[string]any{"k": []any{int64(1), int64(2), "3"}}},
		"items: expected an array, got a map":             map[string]any{"items": map[string]any{}},
		"expected a map, got an array":                    []any{int64(1)},
	} {
		err := Params{value: value, present: true}.Decode(&args)
		var rpcErr *Error
		if !errors.As(err, &rpcErr) || rpcErr.Code != CodeInvalidParams || rpcErr.Message != "Invalid params: "+want {
			t.Errorf("got %v, want %q", err, "Invalid params: "+want)
		}
	}
}

// TestDecodedBinaryIsSharedOnlyWhenNobodyElseOwnsIt: Params.Decode hands a []byte the binary of
// the received frame itself (no copy), while MessagePackCodec.Unmarshal, whose payload belongs to
// the caller, copies it.
func TestDecodedBinaryIsSharedOnlyWhenNobodyElseOwnsIt(t *testing.T) {
	t.Parallel()
	payload, err := MessagePackCodec{}.Encode(map[string]any{"blob": []byte{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	generic, err := MessagePackCodec{}.Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	var viaParams struct {
		Blob []byte `json:"blob"`
	}
	if err := (Params{value: generic, present: true}).Decode(&viaParams); err != nil {
		t.Fatal(err)
	}
	if received := generic.(map[string]any)["blob"].([]byte); &viaParams.Blob[0] != &received[0] {
		t.Fatal("Params.Decode copied the binary")
	}
	var viaUnmarshal struct {
		Blob []byte `json:"blob"`
	}
	if err := (MessagePackCodec{}).Unmarshal(payload, &viaUnmarshal); err != nil {
		t.Fatal(err)
	}
	payload[len(payload)-1] = 99 // the caller reuses its buffer
	if viaUnmarshal.Blob[2] != 3 {
		t.Fatal("Unmarshal shares the caller's payload")
	}
}
