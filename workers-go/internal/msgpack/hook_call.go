package msgpack

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
)

// The codec hooks are the application's code, run inside the codecs (both of them: the JSON codec
// calls its hooks through here too). Whatever a hook does, the codec fails with an error rather
// than take the process down:
//
//   - a panic in the hook is recovered where the hook is called, and is the hook's failure, as an
//     error it returned would be;
//   - a hook that calls a codec, which calls a hook, which calls a codec... (an encode hook that
//     encodes the value it was given, which needs the hook again) would go on until the
//     goroutine's stack is exhausted, which Go cannot recover from: the hook calls in progress on
//     one goroutine, one inside another, are bounded, and the call beyond the bound fails.
//
// A hook that recurses forever in its own code, without calling a codec, is out of reach: Go
// stops the process when a goroutine's stack is exhausted, and nothing can recover it.

// MaxHookNesting is how many hook calls counted on one goroutine may be in progress, one inside
// another: the call beyond fails with ErrHooksNested.
const MaxHookNesting = 64

// hooksUncounted is how many hook calls, on all goroutines together, may be in progress before the
// calls are counted per goroutine: below it (always, but for a hook that calls a codec, or hooks
// blocked on many goroutines at once) a call costs two atomic additions and no more. A goroutine
// can thus nest hooksUncounted + MaxHookNesting calls at most.
const hooksUncounted = 16

// ErrHooksNested is the failure of a hook call made while too many are in progress on the same
// goroutine, one inside another.
var ErrHooksNested = fmt.Errorf("hook calls nested more than %d deep on one goroutine (does the hook call the codec with a value that needs the hook again?)", MaxHookNesting)

var (
	hooksInProgress atomic.Int64
	nestingMu       sync.Mutex
	nesting         = map[uint64]int{} // goroutine id -> the counted hook calls in progress on it
)

// enterHook counts a hook call about to be made. It returns the id of the goroutine when the call
// is counted per goroutine (0 when not), and false, having counted nothing, when the call would
// nest too deep.
func enterHook() (uint64, bool) {
	if hooksInProgress.Add(1) <= hooksUncounted {
		return 0, true
	}
	id := goroutineID()
	nestingMu.Lock()
	n := nesting[id]
	if n >= MaxHookNesting {
		nestingMu.Unlock()
		hooksInProgress.Add(-1)
		return 0, false
	}
	nesting[id] = n + 1
	nestingMu.Unlock()
	return id, true
}

// leaveHook uncounts a hook call enterHook counted.
func leaveHook(id uint64) {
	if id != 0 {
		nestingMu.Lock()
		if n := nesting[id] - 1; n > 0 {
			nesting[id] = n
		} else {
			delete(nesting, id)
		}
		nestingMu.Unlock()
	}
	hooksInProgress.Add(-1)
}

// goroutineID reads the running goroutine's id from the first line of its stack trace,
// "goroutine 18 [running]:". Only the calls made while many hook calls are in progress need it.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	const prefix = "goroutine "
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return 1 // never: then every counted call is taken for the same goroutine, which is safe
	}
	var id uint64
	for _, c := range b[len(prefix):] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	if id == 0 {
		return 1
	}
	return id
}

// HookFailure is how a hook call failed: the error the hook returned, or the panic it raised.
type HookFailure struct {
	// Err is the hook's error; for a panic, the panic value when it is an error, else nil.
	Err error
	// Panicked is set when the hook panicked, with the value in Panic.
	Panicked bool
	Panic    any
}

// text states the failure for a message: the hook's error, or "panic: " and the panic value.
func (f *HookFailure) text() string {
	if f.Panicked {
		return "panic: " + fmt.Sprint(f.Panic)
	}
	return f.Err.Error()
}

// callHook gives arg to hook, recovering a panic and bounding the nesting of hook calls; the
// failure, if any, is in the second result.
func callHook[A any](hook func(A) (any, error), arg A) (result any, failure *HookFailure) {
	id, ok := enterHook()
	if !ok {
		return nil, &HookFailure{Err: ErrHooksNested}
	}
	defer func() {
		leaveHook(id)
		if p := recover(); p != nil {
			result, failure = nil, &HookFailure{Panicked: true, Panic: p}
			if err, isErr := p.(error); isErr {
				failure.Err = err
				if errors.Is(err, ErrHooksNested) { // the hook panicked with a nested call's error
					failure.Err, failure.Panicked, failure.Panic = ErrHooksNested, false, nil
				}
			}
		}
	}()
	v, err := hook(arg)
	if err != nil {
		if errors.Is(err, ErrHooksNested) {
			// The hook passes on the failure of the codec it called: it is stated once, not once
			// for each level of nesting.
			err = ErrHooksNested
		}
		return nil, &HookFailure{Err: err}
	}
	return v, nil
}

// CallEncodeHook gives v to an encode hook; its failure (an error or a panic) is an *EncodeError of
// Kind HookFailed.
func CallEncodeHook(hook func(any) (any, error), v any) (any, error) {
	replacement, failure := callHook(hook, v)
	if failure != nil {
		return nil, &EncodeError{Kind: HookFailed, Type: reflect.TypeOf(v), Err: failure.Err, failure: failure}
	}
	return replacement, nil
}
