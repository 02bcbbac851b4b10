package aspectipc

import (
	"errors"
	"reflect"
	"testing"
)

// An integer that does not fit the field it is decoded into is named with the field's type, on
// both channels: a JSON number, a MessagePack int or uint (read lazily and from the generic value).

func TestParamsDecodeNamesIntegersOutOfRange(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		field reflect.Type
		text  string // the params' "n", as JSON text
		want  string
	}{
		{reflect.TypeOf(int(0)), "9223372036854775808", "n: 9223372036854775808 overflows int"},
		{reflect.TypeOf(int(0)), "18446744073709551615", "n: 18446744073709551615 overflows int"},
		{reflect.TypeOf(int64(0)), "9223372036854775808", "n: 9223372036854775808 overflows int64"},
		{reflect.TypeOf(int32(0)), "18446744073709551615", "n: 18446744073709551615 overflows int32"},
		{reflect.TypeOf(int32(0)), "2147483648", "n: 2147483648 overflows int32"},
		{reflect.TypeOf(int16(0)), "-32769", "n: -32769 overflows int16"},
		{reflect.TypeOf(int8(0)), "128", "n: 128 overflows int8"},
		{reflect.TypeOf(int8(0)), "-129", "n: -129 overflows int8"},
		{reflect.TypeOf(level(0)), "9223372036854775808", "n: 9223372036854775808 overflows aspectipc.level"},
		{reflect.TypeOf(uint(0)), "-1", "n: -1 is negative, uint is unsigned"},
		{reflect.TypeOf(uint64(0)), "-9223372036854775808", "n: -9223372036854775808 is negative, uint64 is unsigned"},
		{reflect.TypeOf(uint8(0)), "256", "n: 256 overflows uint8"},
		{reflect.TypeOf(uint8(0)), "18446744073709551615", "n: 18446744073709551615 overflows uint8"},
		{reflect.TypeOf(uint16(0)), "65536", "n: 65536 overflows uint16"},
		{reflect.TypeOf(uint32(0)), "4294967296", "n: 4294967296 overflows uint32"},
	} {
		fromJSON := jsonParams(t, `{"n":`+c.text+`}`)
		lazy, eager := bothParams(t, fromJSON.Value()) // the same integer, as MessagePack
		for name, p := range map[string]Params{"json": fromJSON, "msgpack": lazy, "msgpack generic": eager} {
			target := reflect.New(reflect.StructOf([]reflect.StructField{{Name: "N", Type: c.field, Tag: `json:"n"`}}))
			err := p.Decode(target.Interface())
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalidParams || e.Message != "Invalid params: "+c.want {
				t.Errorf("%s into %s (%s): got %v; want -32602 Invalid params: %s", c.text, c.field, name, err, c.want)
			}
		}
	}
}

// level is a named integer type: its name is the one in the message.
type level int64

func TestParamsDecodeStoresIntegersAtTheLimits(t *testing.T) {
	t.Parallel()
	var target struct {
		I  int    `json:"i"`
		U  uint64 `json:"u"`
		I8 int8   `json:"i8"`
		U8 uint8  `json:"u8"`
	}
	fromJSON := jsonParams(t, `{"i":9223372036854775807,"u":18446744073709551615,"i8":-128,"u8":255}`)
	lazy, eager := bothParams(t, fromJSON.Value())
	for name, p := range map[string]Params{"json": fromJSON, "msgpack": lazy, "msgpack generic": eager} {
		if err := p.Decode(&target); err != nil || target.I != 1<<63-1 || target.U != 1<<64-1 || target.I8 != -128 || target.U8 != 255 {
			t.Errorf("%s: %+v, %v", name, target, err)
		}
	}
}

// jsonParams returns the params of a request read from the control channel, given as JSON text.
func jsonParams(t *testing.T, params string) Params {
	t.Helper()
	generic, err := JSONCodec{}.Decode([]byte(`{"jsonrpc":"2.0","id":1,"method":"m","params":` + params + `}`))
	if err != nil {
		t.Fatal(err)
	}
	msg := JSONRPCProtocol{}.Classify(generic)
	return msg.params()
}
