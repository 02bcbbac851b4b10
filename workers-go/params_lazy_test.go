package aspectipc

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand"
	"reflect"
	"sync"
	"testing"
)

// The params of a request read from the data channel reach the handler undecoded (lazy); these
// tests check that Params then behaves exactly as with the generic value (eager).

type lazyItem struct {
	ID    int64   `json:"id"`
	Value float64 `json:"value"`
}

type lazyRecord struct {
	Items  []lazyItem          `json:"items"`
	Name   string              `json:"name,omitempty"`
	Count  *uint16             `json:"count"`
	Blob   []byte              `json:"blob"`
	Extra  any                 `json:"extra"`
	ByName map[string]float32  `json:"byName"`
	Pair   [2]int8             `json:"pair"`
	Nested *lazyRecord         `json:"nested"`
	Skip   string              `json:"-"`
	Deep   map[int][]lazyItem  `json:"deep"`
	Flags  map[string]struct{} `json:"flags"`
}

var lazyTargets = map[string]func() any{
	"record":  func() any { return &lazyRecord{Name: "kept", ByName: map[string]float32{"old": 1}} },
	"items":   func() any { return &struct{ Items []lazyItem }{} },
	"floats":  func() any { return new(map[string]float64) },
	"array":   func() any { return new([]any) },
	"any":     func() any { return new(any) },
	"int8s":   func() any { return new([2]int8) },
	"pointer": func() any { return new(*lazyItem) },
}

var lazyKeys = []string{"items", "id", "value", "Value", "name", "count", "blob", "extra", "byName", "pair", "nested", "deep", "flags", "7", "x"}

// genParam returns a random generic value, mostly of the shapes of the targets.
func genParam(r *rand.Rand, depth int) any {
	switch k := r.Intn(12); {
	case k < 3 && depth < 4:
		out := make([]any, r.Intn(4))
		for i := range out {
			out[i] = genParam(r, depth+1)
		}
		return out
	case k < 6 && depth < 4:
		out := map[string]any{}
		for i := r.Intn(5); i > 0; i-- {
			out[lazyKeys[r.Intn(len(lazyKeys))]] = genParam(r, depth+1)
		}
		return out
	case k == 6:
		return []any{int64(-129), int64(127), int64(70000), int64(math.MaxInt64), uint64(math.MaxUint64), int64(math.MinInt64)}[r.Intn(6)]
	case k == 7:
		// math.Copysign: the constant -0.0 is an exact zero, +0 (go.dev/ref/spec#Constant_expressions).
		return []any{1.5, math.Copysign(0, -1), 0.0, 1e300, 3.0, math.Inf(-1)}[r.Intn(6)]
	case k == 8:
		return []any{"", "héllo", "12", nil, true, false}[r.Intn(6)]
	case k == 9:
		return []byte{byte(r.Intn(256)), 2}
	}
	return int64(r.Intn(300))
}

// sameSigned is reflect.DeepEqual, and the zeros of a and b have the same signs: DeepEqual
// compares floats with ==, for which -0 equals +0, so a decoding that lost the sign of a -0 would
// pass it.
func sameSigned(a, b any) bool {
	return reflect.DeepEqual(a, b) && sameZeroSigns(reflect.ValueOf(a), reflect.ValueOf(b))
}

func sameZeroSigns(a, b reflect.Value) bool {
	if !a.IsValid() || !b.IsValid() {
		return a.IsValid() == b.IsValid()
	}
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		return math.Signbit(a.Float()) == math.Signbit(b.Float())
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameZeroSigns(a.Elem(), b.Elem())
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !sameZeroSigns(a.Index(i), b.Index(i)) {
				return false
			}
		}
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if !sameZeroSigns(a.Field(i), b.Field(i)) {
				return false
			}
		}
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for it := a.MapRange(); it.Next(); {
			if w := b.MapIndex(it.Key()); !w.IsValid() || !sameZeroSigns(it.Value(), w) {
				return false
			}
		}
	}
	return true
}

// bothParams returns the params of one request as the channel gives them to a handler (lazy) and
// as the codec's generic value gives them (eager).
func bothParams(t *testing.T, params any) (lazy, eager Params) {
	t.Helper()
	payload, err := MessagePackCodec{}.Encode(JSONRPCProtocol{}.Request(IntID(1), "m", params))
	if err != nil {
		t.Fatal(err)
	}
	v, err := decodeMessage(MessagePackCodec{}, payload)
	if err != nil {
		t.Fatal(err)
	}
	msg := JSONRPCProtocol{}.Classify(v)
	generic, err := MessagePackCodec{}.Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	eagerMsg := JSONRPCProtocol{}.Classify(generic)
	return msg.params(), eagerMsg.params()
}

// sameDecode decodes into two fresh targets, lazily and eagerly: the same value, or the same
// error. assign walks maps in random order, so where that order shows (an error naming either of
// two bad keys, a field named by two keys but for case) the eager decoding is tried again until
// it gives the lazy one's outcome. That order is far from uniform for small maps (one of three
// keys may come first once in a hundred walks), hence thousands of tries, not hundreds.
func sameDecode(t *testing.T, lazy, eager Params, make func() any) {
	t.Helper()
	a, b := make(), make()
	errA, errB := lazy.Decode(a), eager.Decode(b)
	if (errA == nil) != (errB == nil) {
		t.Fatalf("%#v: lazy error %v, eager error %v", eager.Value(), errA, errB)
	}
	if errA == nil {
		// Two keys equal but for case fill one field: assign keeps the one it walks to last.
		for i := 0; i < 5000 && !sameSigned(a, b); i++ {
			b = make()
			_ = eager.Decode(b)
		}
		if !sameSigned(a, b) {
			t.Fatalf("%#v:\nlazy  %#v\neager %#v", eager.Value(), a, b)
		}
		return
	}
	var rpcErr *Error
	if !errors.As(errA, &rpcErr) || rpcErr.Code != CodeInvalidParams {
		t.Fatalf("lazy error %#v, want an *Error with CodeInvalidParams", errA)
	}
	for i := 0; i < 5000 && errA.Error() != errB.Error(); i++ {
		errB = eager.Decode(make())
	}
	if errA.Error() != errB.Error() {
		t.Fatalf("%#v: lazy error %q, eager error %q", eager.Value(), errA, errB)
	}
}

func TestLazyParamsDecodeAsTheGenericValue(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewSource(5))
	for i := 0; i < 3000; i++ {
		params := genParam(r, 0)
		if !isArray(params) && !isMap(params) {
			params = []any{params}
		}
		lazy, eager := bothParams(t, params)
		if lazy.lazy == nil {
			t.Fatal("the channel's decoding left no params undecoded")
		}
		if !sameSigned(lazy.Value(), eager.Value()) {
			t.Fatalf("Value: lazy %#v, eager %#v", lazy.Value(), eager.Value())
		}
		for _, make := range lazyTargets {
			lazy, eager := bothParams(t, params) // a fresh one: Decode must not need Value first
			sameDecode(t, lazy, eager, make)
		}
	}
}

// TestLazyParamsKnownErrors: the texts of the documented errors, through the direct decoder.
func TestLazyParamsKnownErrors(t *testing.T) {
	t.Parallel()
	good := map[string]any{"id": int64(1), "value": 1.5}
	for want, params := range map[string]any{
		"Invalid params: items[1].value: expected a number, got a string": map[string]any{"items": []any{good, map[string]any{"value": "x"}}},
		"Invalid params: items[0].id: expected an integer, got a float":   map[string]any{"items": []any{map[string]any{"id": 1.5}}},
		"Invalid params: count: 70000 overflows uint16":                   map[string]any{"count": int64(70000)},
		"Invalid params: pair[1]: -129 overflows int8":                    map[string]any{"pair": []any{1, -129}},
		"Invalid params: deep: map key \"x\" is not a int":                map[string]any{"deep": map[string]any{"x": []any{}}},
		"Invalid params: expected a map, got an array":                    []any{int64(1)},
	} {
		lazy, _ := bothParams(t, params)
		var target lazyRecord
		var rpcErr *Error
		if err := lazy.Decode(&target); !errors.As(err, &rpcErr) || rpcErr.Message != want {
			t.Errorf("got %v, want %q", err, want)
		}
	}
}

// TestLazyParamsValueOnce: the generic value is built once, whichever goroutines ask for it.
func TestLazyParamsValueOnce(t *testing.T) {
	t.Parallel()
	lazy, _ := bothParams(t, map[string]any{"items": []any{int64(1)}})
	values := make([]any, 8)
	var wg sync.WaitGroup
	for i := range values {
		wg.Add(1)
		go func() {
			defer wg.Done()
			values[i] = lazy.Value()
		}()
	}
	wg.Wait()
	for _, v := range values {
		if reflect.ValueOf(v).UnsafePointer() != reflect.ValueOf(values[0]).UnsafePointer() {
			t.Fatal("Value built the generic value more than once")
		}
	}
}

// TestLazyParamsWithDuplicateKeys: a map that repeats a key (but for case) is decoded through
// the generic value, which keeps the last of two equal keys.
func TestLazyParamsWithDuplicateKeys(t *testing.T) {
	t.Parallel()
	payload := []byte{0x84, 0xa7, 'j', 's', 'o', 'n', 'r', 'p', 'c', 0xa3, '2', '.', '0', 0xa2, 'i', 'd', 0x01,
		0xa6, 'm', 'e', 't', 'h', 'o', 'd', 0xa1, 'm', 0xa6, 'p', 'a', 'r', 'a', 'm', 's',
		0x83, 0xa1, 'k', 0x81, 0xa1, 'a', 0x01, 0xa1, 'k', 0x81, 0xa1, 'b', 0x02, 0xa2, 'i', 'D', 0x05}
	v, err := decodeMessage(MessagePackCodec{}, payload)
	if err != nil {
		t.Fatal(err)
	}
	msg := JSONRPCProtocol{}.Classify(v)
	var got struct {
		K  struct{ A, B int } `json:"k"`
		ID int                `json:"id"`
	}
	if err := msg.params().Decode(&got); err != nil || got.K.A != 0 || got.K.B != 2 || got.ID != 5 {
		t.Fatalf("got %+v, %v: want the last k only", got, err)
	}
}

// TestHandlerParamsOutliveLaterFrames: a handler that decodes its params after later frames were
// read (into the same read buffer) still sees its own, binaries included, on both codecs.
func TestHandlerParamsOutliveLaterFrames(t *testing.T) {
	t.Parallel()
	for _, c := range bothCodecs {
		c := c
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			type args struct {
				Items []lazyItem `json:"items"`
				Blob  []byte     `json:"blob"`
			}
			handlers := HandlerTable{
				"hold": func(_ context.Context, p Params) (any, error) {
					<-release
					var a args
					if err := p.Decode(&a); err != nil {
						return nil, err
					}
					return map[string]any{"items": a.Items, "blob": a.Blob, "value": p.Value()}, nil
				},
				"echo": func(_ context.Context, p Params) (any, error) { return p.Value(), nil },
			}
			client, _ := channelPair(t, c.framing, c.codec, nil, handlers)
			ctx := context.Background()
			items := []any{map[string]any{"id": int64(1), "value": 0.5}, map[string]any{"id": int64(2), "value": 2.25}}
			blob := []byte("0123456789abcdef")
			if c.name == "json" {
				blob = nil // JSON has no binary
			}
			type outcome struct {
				res Result
				err error
			}
			held := make(chan outcome, 1)
			go func() {
				res, err := client.Request(ctx, "hold", map[string]any{"items": items, "blob": blob})
				held <- outcome{res, err}
			}()
			released := false
			defer func() {
				if !released {
					close(release)
				}
			}()
			for i := 0; i < 20; i++ { // overwrite whatever buffer the held request was read into
				var noise any = bytes.Repeat([]byte{byte(i)}, 100+i)
				if c.name == "json" {
					noise = string(bytes.Repeat([]byte{'a' + byte(i)}, 100+i))
				}
				if _, err := client.Request(ctx, "echo", []any{noise, "xxxxxxxxxxxxxxxxxxxx", 9.75}); err != nil {
					t.Fatal(err)
				}
			}
			released = true
			close(release)
			var got struct {
				Items []lazyItem `json:"items"`
				Blob  []byte     `json:"blob"`
				Value args       `json:"value"`
			}
			o := <-held
			if o.err != nil {
				t.Fatal(o.err)
			}
			if err := o.res.Decode(&got); err != nil {
				t.Fatal(err)
			}
			want := []lazyItem{{1, 0.5}, {2, 2.25}}
			if !reflect.DeepEqual(got.Items, want) || !bytes.Equal(got.Blob, blob) ||
				!reflect.DeepEqual(got.Value.Items, want) || !bytes.Equal(got.Value.Blob, blob) {
				t.Fatalf("the held request saw %+v", got)
			}
		})
	}
}

func FuzzLazyParams(f *testing.F) {
	for _, params := range []any{
		map[string]any{"items": []any{map[string]any{"id": int64(1), "value": 1.5}}},
		[]any{int64(1), "x", []byte{1}}, map[string]any{"byName": map[string]any{"a": 1e40}},
	} {
		payload, _ := MessagePackCodec{}.Encode(JSONRPCProtocol{}.Request(IntID(1), "m", params))
		f.Add(payload)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		generic, err := MessagePackCodec{}.Decode(payload)
		v, lazyErr := decodeMessage(MessagePackCodec{}, payload)
		if (err == nil) != (lazyErr == nil) || err != nil && err.Error() != lazyErr.Error() {
			t.Fatalf("%x: Decode fails with %v, decodeMessage with %v", payload, err, lazyErr)
		}
		if err != nil {
			return
		}
		eagerMsg, msg := JSONRPCProtocol{}.Classify(generic), JSONRPCProtocol{}.Classify(v)
		lazy, eager := msg.params(), eagerMsg.params()
		msg.materialize()
		if msg.Kind != eagerMsg.Kind || msg.Reason != eagerMsg.Reason || msg.ID != eagerMsg.ID || !sameValue(msg.Params, eagerMsg.Params) {
			t.Fatalf("%x: classified %+v, want %+v", payload, msg, eagerMsg)
		}
		if msg.Kind == KindRequest || msg.Kind == KindNotification {
			for _, make := range lazyTargets {
				sameDecode(t, lazy, eager, make)
			}
		}
	})
}

// TestLazyParamsKeepNegativeZero: a -0 in the params is -0 in the handler, whichever way it reads
// them (Value, or Decode into a float64, a float32, an any or a map of float64), lazily and eagerly.
func TestLazyParamsKeepNegativeZero(t *testing.T) {
	t.Parallel()
	negZero := math.Copysign(0, -1)
	params := map[string]any{
		"items":  []any{map[string]any{"id": int64(1), "value": negZero}},
		"byName": map[string]any{"a": negZero},
		"extra":  negZero,
	}
	lazy, eager := bothParams(t, params)
	for name, p := range map[string]Params{"lazy": lazy, "eager": eager} {
		if !sameSigned(p.Value(), params) {
			t.Errorf("%s Value: %#v, want %#v", name, p.Value(), params)
		}
		var record lazyRecord
		if err := p.Decode(&record); err != nil {
			t.Fatalf("%s Decode: %v", name, err)
		}
		extra, _ := record.Extra.(float64)
		if len(record.Items) != 1 || !math.Signbit(record.Items[0].Value) || !math.Signbit(float64(record.ByName["a"])) || !math.Signbit(extra) {
			t.Errorf("%s Decode lost the sign of a -0: %+v", name, record)
		}
	}
	lazy, eager = bothParams(t, map[string]any{"x": negZero, "y": 0.0})
	for name, p := range map[string]Params{"lazy": lazy, "eager": eager} {
		var floats map[string]float64
		if err := p.Decode(&floats); err != nil || !math.Signbit(floats["x"]) || math.Signbit(floats["y"]) {
			t.Errorf("%s Decode into a map[string]float64: %v, %v", name, floats, err)
		}
	}
}
