package assign

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// fuzzTarget is the type the differential test decodes into: the kinds Into handles the way
// encoding/json does. ([]byte and any are left out on purpose: JSON gives base64 and float64
// where the SDK gives bin and int64.)
type fuzzTarget struct {
	Name   string            `json:"name"`
	Count  int8              `json:"count"`
	Big    uint64            `json:"big"`
	Ratio  float64           `json:"ratio"`
	OK     *bool             `json:"ok"`
	Tags   []string          `json:"tags"`
	Pair   [2]int32          `json:"pair"`
	Scores map[string]int64  `json:"scores"`
	ByID   map[int]string    `json:"byId"`
	Next   *fuzzTarget       `json:"next"`
	Items  []fuzzItem        `json:"items"`
	Skip   string            `json:"-"`
	Nested map[string][]uint `json:"nested"`
	fuzzEmbedded
}

type fuzzItem struct {
	ID    int64   `json:"id"`
	Value float64 `json:"value"`
}

type fuzzEmbedded struct {
	Promoted string `json:"promoted"`
	Untagged int16
}

// FuzzIntoAgainstEncodingJSON is a differential test of Into: for JSON text, decoding the generic
// value (as the SDK's codecs produce it) with Into succeeds exactly when encoding/json.Unmarshal
// does, with the same result.
func FuzzIntoAgainstEncodingJSON(f *testing.F) {
	for _, seed := range []string{
		`{"name":"a","count":3,"ratio":1,"ok":true,"tags":["x"],"pair":[1,2,3],"scores":{"a":1}}`,
		`{"byId":{"1":"x","-2":"y"},"next":{"name":"b","next":null},"items":[{"id":1,"value":2.5}]}`,
		`{"NAME":"case","Count":200,"big":18446744073709551615,"promoted":"p","Untagged":7}`,
		`{"items":[{"id":1,"value":2.5,"x":1},{"id":2,"value":3.5,"x":1},{"ID":3,"value":1,"x":1},{"id":4,"x":1,"y":2}]}`,
		`{"count":1.5}`, `{"big":-1}`, `{"tags":"x"}`, `{"nested":{"a":[1,2]}}`, `[1]`, `null`, `{"-":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		generic, ok := genericOf(input)
		if !ok || foldedDuplicates(generic) {
			return
		}
		var want, got fuzzTarget
		wantErr := json.Unmarshal(input, &want)
		gotErr := Into(&got, generic, Options{EncodeJSON: json.Marshal})
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("%s: encoding/json says %v, Into says %v", input, wantErr, gotErr)
		}
		if wantErr == nil && !reflect.DeepEqual(want, got) {
			t.Fatalf("%s:\nencoding/json %+v\nInto          %+v", input, want, got)
		}
	})
}

// genericOf reads JSON text into the SDK's generic value: integers as int64 (uint64 above), other
// numbers as float64. It refuses what the SDK's JSON codec refuses (integers out of range).
func genericOf(input []byte) (any, bool) {
	if !json.Valid(input) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, false
	}
	return numbers(v)
}

func numbers(v any) (any, bool) {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return i, true
			}
			u, err := strconv.ParseUint(s, 10, 64)
			return u, err == nil
		}
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil
	case []any:
		for i := range x {
			var ok bool
			if x[i], ok = numbers(x[i]); !ok {
				return nil, false
			}
		}
	case map[string]any:
		for k := range x {
			var ok bool
			if x[k], ok = numbers(x[k]); !ok {
				return nil, false
			}
		}
	}
	return v, true
}

// foldedDuplicates reports an object with two keys equal but for case: encoding/json lets the
// last in the text win, Into sees a map (no order), so the two may pick different values.
func foldedDuplicates(v any) bool {
	switch x := v.(type) {
	case []any:
		for _, item := range x {
			if foldedDuplicates(item) {
				return true
			}
		}
	case map[string]any:
		var seen []string
		for k, item := range x {
			for _, other := range seen {
				if strings.EqualFold(k, other) {
					return true
				}
			}
			if foldedDuplicates(item) {
				return true
			}
			seen = append(seen, k)
		}
	}
	return false
}
