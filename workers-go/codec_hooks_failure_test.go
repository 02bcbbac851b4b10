package aspectipc

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aspect-ipc/aspect-ipc/workers-go/internal/msgpack"
)

// A codec hook is the application's code, run inside the codec: whatever it does (return an
// error, panic, call the codec again, keep returning what needs it again), the codec fails with a
// *CodecError naming the place, and nothing else happens (PROTOCOL.md 3.5: "a hook's failure is a
// codec error on that side").

type panicRecord struct{ code int } // a panic value that is not an error

var errHookBroke = errors.New("hook broke")

// panicValues are what the hooks of these tests panic with: text, an error, another value.
var panicValues = []any{"enc-panic", errHookBroke, panicRecord{7}}

func TestEncodeHookPanicIsTheHooksFailure(t *testing.T) {
	msg := JSONRPCProtocol{}.Request(IntID(1), "m", map[string]any{"rows": []any{0, map[string]any{"f": complex(1, 2)}}})
	type withComplex struct {
		C complex128 `json:"c"`
	}
	for _, with := range panicValues {
		hook := func(any) (any, error) { panic(with) }
		for _, codec := range []Codec{MessagePackCodec{EncodeHook: hook}, JSONCodec{EncodeHook: hook}} {
			for _, c := range []struct {
				value any
				path  string
			}{{msg, "$.params.rows[1].f"}, {[]any{withComplex{1}}, "$[0].c"}} {
				_, err := codec.Encode(c.value)
				var ce *CodecError
				want := fmt.Sprintf("encode hook failed on complex128 at %s: panic: %v", c.path, with)
				if !errors.As(err, &ce) || ce.Path != c.path || !strings.Contains(ce.Message, want) {
					t.Fatalf("%s, hook panicking with %#v: %v, want a *CodecError at %s saying %q", codec.Name(), with, err, c.path, want)
				}
				if cause := errors.Unwrap(err); with == errHookBroke && cause != errHookBroke || with != errHookBroke && cause != nil {
					t.Fatalf("%s, hook panicking with %#v: cause %#v, want the panic's error, or none", codec.Name(), with, cause)
				}
			}
		}
	}
}

func TestDecodeHookPanicIsTheHooksFailure(t *testing.T) {
	for _, with := range panicValues {
		hook := func(m map[string]any) (any, error) {
			if _, ok := m["bad"]; ok {
				panic(with)
			}
			return m, nil
		}
		for _, codec := range []Codec{MessagePackCodec{DecodeHook: hook}, JSONCodec{DecodeHook: hook},
			MessagePackCodec{DecodeHook: hook, DecodeHookKeys: []string{"bad"}}, JSONCodec{DecodeHook: hook, DecodeHookKeys: []string{"bad"}}} {
			plain := MessagePackCodec{}.Encode
			if codec.Name() == "json" {
				plain = JSONCodec{}.Encode
			}
			payload, err := plain(JSONRPCProtocol{}.Request(IntID(9), "m", map[string]any{"list": []any{1, map[string]any{"bad": true}}}))
			if err != nil {
				t.Fatal(err)
			}
			for _, decode := range []func([]byte) (any, error){codec.Decode, func(p []byte) (any, error) { return decodeMessage(codec, p) }} {
				_, err = decode(payload)
				var ce *CodecError
				want := fmt.Sprintf("decode hook failed at $.params.list[1]: panic: %v", with)
				if !errors.As(err, &ce) || ce.Path != "$.params.list[1]" || !strings.Contains(ce.Message, want) {
					t.Fatalf("%s, hook panicking with %#v: %v, want a *CodecError saying %q", codec.Name(), with, err, want)
				}
				if cause := errors.Unwrap(err); with == errHookBroke && cause != errHookBroke || with != errHookBroke && cause != nil {
					t.Fatalf("%s, hook panicking with %#v: cause %#v, want the panic's error, or none", codec.Name(), with, cause)
				}
				// As for a hook's error, the request's id is recovered for its -32700 answer.
				if id := parseErrorID(codec, payload, err); id != IntID(9) {
					t.Fatalf("%s: the -32700 answer would carry id %v, want 9", codec.Name(), id)
				}
			}
		}
	}
}

// A hook that calls the codec with a value that needs the hook again would recurse until the
// goroutine's stack is exhausted, which Go cannot recover from: the nesting of hook calls is
// bounded, and the codec fails, once, with the reason.
func TestHookCallingTheCodecEndsInACodecError(t *testing.T) {
	var mp MessagePackCodec
	mp.EncodeHook = func(v any) (any, error) { return mp.Encode(v) }
	var js JSONCodec
	js.EncodeHook = func(v any) (any, error) { return js.Encode(v) }
	var mpd MessagePackCodec
	mpd.DecodeHook = func(m map[string]any) (any, error) {
		b, err := MessagePackCodec{}.Encode(m)
		if err != nil {
			return nil, err
		}
		return mpd.Decode(b) // the same map again, and again
	}
	var jsd JSONCodec
	jsd.DecodeHook = func(m map[string]any) (any, error) {
		b, err := JSONCodec{}.Encode(m)
		if err != nil {
			return nil, err
		}
		return jsd.Decode(b)
	}
	// A hook that panics with the codec's error rather than return it ends the same way.
	var mpPanic MessagePackCodec
	mpPanic.EncodeHook = func(v any) (any, error) {
		out, err := mpPanic.Encode(v)
		if err != nil {
			panic(err)
		}
		return out, nil
	}
	check := func(name string, err error, path string) {
		t.Helper()
		var ce *CodecError
		if !errors.As(err, &ce) || !errors.Is(err, msgpack.ErrHooksNested) || ce.Path != path ||
			strings.Count(ce.Message, "nested more than") != 1 {
			t.Fatalf("%s: %v, want one *CodecError at %s saying the hook calls nest too deep", name, err, path)
		}
	}
	for _, codec := range []Codec{mp, js, mpPanic} {
		_, err := codec.Encode(map[string]any{"c": complex(1, 2)})
		check(codec.Name()+" encode", err, "$.c")
	}
	for _, codec := range []Codec{mpd, jsd} {
		payload, _ := JSONCodec{}.Encode(map[string]any{"a": []any{map[string]any{"b": 1}}})
		if codec.Name() == "msgpack" {
			payload, _ = MessagePackCodec{}.Encode(map[string]any{"a": []any{map[string]any{"b": 1}}})
		}
		_, err := codec.Decode(payload)
		check(codec.Name()+" decode", err, "$.a[0]")
	}
	// The codecs work as before once it failed: nothing is left counted.
	ok := MessagePackCodec{EncodeHook: func(any) (any, error) { return "c", nil }}
	if out, err := ok.Encode(complex(1, 2)); err != nil || string(out) != "\xa1c" {
		t.Fatalf("after the failure: %q, %v", out, err)
	}
}

// A hook that keeps returning a new value needing it again, or a value nested without end, ends
// in a *CodecError too: applications of the hook and nesting are bounded (64 and 512).
func TestHookReturningEverDeeperValuesEndsInACodecError(t *testing.T) {
	again := func(v any) (any, error) { return map[string]any{"again": v}, nil }
	deep := func(any) (any, error) {
		var v any = "bottom"
		for i := 0; i < 100000; i++ {
			v = []any{v}
		}
		return v, nil
	}
	cyclic := func(any) (any, error) {
		m := map[string]any{}
		m["self"] = m
		return m, nil
	}
	for _, c := range []struct {
		name string
		hook func(any) (any, error)
		want string
	}{{"again", again, "after 64 applications"}, {"deep", deep, "512"}, {"cyclic", cyclic, "512"}} {
		for _, codec := range []Codec{MessagePackCodec{EncodeHook: c.hook}, JSONCodec{EncodeHook: c.hook}} {
			_, err := codec.Encode(map[string]any{"c": complex(1, 2)})
			var ce *CodecError
			if !errors.As(err, &ce) || !strings.Contains(ce.Message, c.want) || !strings.HasPrefix(ce.Path, "$.c") {
				t.Fatalf("%s, %s: %v, want a *CodecError saying %q", codec.Name(), c.name, err, c.want)
			}
		}
	}
}

// Many hooks running at once on different goroutines are not taken for nested calls: the bound is
// per goroutine.
func TestConcurrentHooksAreNotNestedCalls(t *testing.T) {
	const n = 3 * msgpack.MaxHookNesting
	var inside sync.WaitGroup
	inside.Add(n)
	release := make(chan struct{})
	blocking := func(any) (any, error) {
		inside.Done()
		<-release
		return "ok", nil
	}
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		codec := Codec(MessagePackCodec{EncodeHook: blocking})
		if i%2 == 1 {
			codec = JSONCodec{EncodeHook: blocking}
		}
		go func() {
			_, err := codec.Encode(complex(1, 2))
			errs <- err
		}()
	}
	inside.Wait()
	// With all of them in progress, a hook that calls the codec on this goroutine is still stopped.
	var mp MessagePackCodec
	mp.EncodeHook = func(v any) (any, error) { return mp.Encode(v) }
	if _, err := mp.Encode(complex(1, 2)); !errors.Is(err, msgpack.ErrHooksNested) {
		t.Fatalf("nested calls among %d blocked hooks: %v", n, err)
	}
	close(release)
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("a hook among %d running at once failed: %v", n, err)
		}
	}
}

type cyclicNode struct {
	Self *cyclicNode `json:"self"`
}

// A decode hook that returns a cyclic value: storing it into a recursive type fails (-32602 for
// params) rather than walk it until the stack is exhausted.
func TestCyclicValueFromADecodeHookFailsDecode(t *testing.T) {
	cyclic := func(m map[string]any) (any, error) {
		m["self"] = m
		return m, nil
	}
	for _, codec := range []Codec{MessagePackCodec{DecodeHook: cyclic}, JSONCodec{DecodeHook: cyclic}} {
		payload, _ := JSONCodec{}.Encode(map[string]any{"a": 1})
		if codec.Name() == "msgpack" {
			payload, _ = MessagePackCodec{}.Encode(map[string]any{"a": 1})
		}
		v, err := codec.Decode(payload)
		if err != nil {
			t.Fatal(err)
		}
		var node cyclicNode
		err = Params{value: v, present: true}.Decode(&node)
		var rpc *Error
		if !errors.As(err, &rpc) || rpc.Code != CodeInvalidParams || !strings.Contains(rpc.Message, "nested deeper than 10000 levels") {
			t.Fatalf("%s: %v", codec.Name(), err)
		}
		var list []cyclicNode
		if err := (Result{value: []any{v}}).Decode(&list); err == nil || !strings.Contains(err.Error(), "nested deeper") {
			t.Fatalf("%s: %v", codec.Name(), err)
		}
	}
}
