package msgpack

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestShortPathKeepsBothEndsAndWholeCharacters(t *testing.T) {
	long := "$" + strings.Repeat(`["é"]`, 100) + ".end"
	short := ShortPath(long)
	if len(short) > maxPlaceLength+3 || !utf8.ValidString(short) || !strings.HasPrefix(short, `$["é"]`) || !strings.HasSuffix(short, `"].end`) {
		t.Fatalf("%q", short)
	}
	if ShortPath("$.a[1]") != "$.a[1]" {
		t.Fatal("a short path is kept whole")
	}
}

func TestEncodeErrorPathIsGatheredOnTheWayOut(t *testing.T) {
	e := Encoder{}
	err := e.Encode(map[string]any{"a": []any{1, map[string]any{"b c": time.Time{}}}}, 0)
	var ee *EncodeError
	if !errors.As(err, &ee) || ee.Kind != Unsupported || ee.Type != reflect.TypeOf(time.Time{}) || ee.Path() != `$.a[1]["b c"]` {
		t.Fatalf("%v", err)
	}
}

func TestDecodeHookReplacesMapsInnermostFirst(t *testing.T) {
	e := Encoder{}
	_ = e.Encode(map[string]any{"x": []any{map[string]any{"k": 1}}}, 0)
	calls := 0
	v, err := DecodeWith(e.Buf, func(m map[string]any) (any, error) {
		calls++
		if _, ok := m["k"]; ok {
			return "inner", nil
		}
		return m, nil
	})
	if err != nil || calls != 2 || !reflect.DeepEqual(v, map[string]any{"x": []any{"inner"}}) {
		t.Fatalf("%#v, %v, %d calls", v, err, calls)
	}
}
