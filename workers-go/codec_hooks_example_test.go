package aspectipc_test

import (
	"errors"
	"fmt"
	"time"

	aspectipc "github.com/aspect-ipc/aspect-ipc/workers-go"
)

// A codec with an encode hook sends a time.Time as RFC 3339 text; without it, the error names
// the place of the value and the conversion to make.
func ExampleMessagePackCodec_hooks() {
	params := map[string]any{"rows": []any{map[string]any{"when": time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)}}}

	_, err := aspectipc.MessagePackCodec{}.Encode(map[string]any{"params": params})
	var ce *aspectipc.CodecError
	if errors.As(err, &ce) {
		fmt.Println(ce.Path)
	}

	codec := aspectipc.MessagePackCodec{
		EncodeHook: func(v any) (any, error) {
			if t, ok := v.(time.Time); ok {
				return t.Format(time.RFC3339Nano), nil
			}
			return nil, fmt.Errorf("no wire form for %T", v)
		},
	}
	payload, _ := codec.Encode(params)
	back, _ := codec.Decode(payload)
	fmt.Println(back)
	// Output:
	// $.params.rows[0].when
	// map[rows:[map[when:2026-11-29T01:00:00Z]]]
}
