package assign

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// celsius decodes itself from JSON: a named basic type with methods.
type celsius float64

func (c *celsius) UnmarshalJSON(text []byte) error {
	f, err := strconv.ParseFloat(string(text), 64)
	*c = celsius(f + 1000)
	return err
}

// word decodes itself from text.
type word string

func (w *word) UnmarshalText(text []byte) error {
	*w = word(strings.ToUpper(string(text)))
	return nil
}

// level is a named basic type without methods: assigned like its underlying type.
type level int64

// TestNamedTypesDecodeThemselvesAndPredeclaredOnesDoNot: the shortcut that skips the method
// lookup for predeclared types (float64, int, string...) leaves named types to their own
// UnmarshalJSON and UnmarshalText, and named types without methods to the usual rules.
func TestNamedTypesDecodeThemselvesAndPredeclaredOnesDoNot(t *testing.T) {
	t.Parallel()
	var got struct {
		Temp   celsius   `json:"temp"`
		Temps  []celsius `json:"temps"`
		Word   word      `json:"word"`
		Level  level     `json:"level"`
		Ratio  float64   `json:"ratio"`
		Count  int       `json:"count"`
		Small  uint8     `json:"small"`
		Name   string    `json:"name"`
		Flag   bool      `json:"flag"`
		Single float32   `json:"single"`
	}
	generic := map[string]any{
		"temp": 1.5, "temps": []any{2.5, int64(3)}, "word": "hi", "level": int64(7),
		"ratio": 0.25, "count": int64(-3), "small": int64(200), "name": "n", "flag": true, "single": 1.5,
	}
	encodeJSON := func(v any) ([]byte, error) { return json.Marshal(v) }
	if err := Into(&got, generic, Options{EncodeJSON: encodeJSON}); err != nil {
		t.Fatal(err)
	}
	if got.Temp != 1001.5 || len(got.Temps) != 2 || got.Temps[0] != 1002.5 || got.Temps[1] != 1003 {
		t.Errorf("UnmarshalJSON was not used: %v %v", got.Temp, got.Temps)
	}
	if got.Word != "HI" {
		t.Errorf("UnmarshalText was not used: %q", got.Word)
	}
	if got.Level != 7 || got.Ratio != 0.25 || got.Count != -3 || got.Small != 200 || got.Name != "n" || !got.Flag || got.Single != 1.5 {
		t.Errorf("plain fields: %+v", got)
	}
}
