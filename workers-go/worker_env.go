package aspectipc

import (
	"fmt"
	"os"
	"strconv"
	"unicode/utf8"
)

// Environment variables set by the parent (PROTOCOL.md section 5).
const (
	EnvProtocol      = "ASPECT_IPC_PROTOCOL"
	EnvWorkerID      = "ASPECT_IPC_WORKER_ID"
	EnvNamespace     = "ASPECT_IPC_NAMESPACE"
	EnvDataPath      = "ASPECT_IPC_DATA_PATH"
	EnvToken         = "ASPECT_IPC_TOKEN"
	EnvMaxFrameSize  = "ASPECT_IPC_MAX_FRAME_SIZE"
	EnvMaxLineLength = "ASPECT_IPC_MAX_LINE_LENGTH"
	EnvTracebacks    = "ASPECT_IPC_TRACEBACKS"
)

// The range a size limit given in the environment must lie in (PROTOCOL.md section 5).
const (
	minEnvLimit = 1024
	maxEnvLimit = 1<<32 - 1
)

// environment is what the worker learns from its environment at start-up.
type environment struct {
	workerID      string
	namespace     string
	dataPath      string
	token         []byte
	maxFrameSize  int64
	maxLineLength int64 // 0: not given, Config.MaxLineLength or the default applies
	noTracebacks  bool  // ASPECT_IPC_TRACEBACKS=0: handler errors carry no traceback
}

// readEnvironment reads the protocol's variables. The token is read once and removed from the
// process environment, so that processes the worker starts do not inherit it.
func readEnvironment() (environment, error) {
	token := os.Getenv(EnvToken)
	os.Unsetenv(EnvToken)
	env := environment{
		workerID:  os.Getenv(EnvWorkerID),
		namespace: os.Getenv(EnvNamespace),
		dataPath:  os.Getenv(EnvDataPath),
		token:     []byte(token),
	}
	for _, v := range [...]struct{ name, value string }{
		{EnvWorkerID, env.workerID}, {EnvNamespace, env.namespace}, {EnvDataPath, env.dataPath},
	} {
		if err := utf8Text(v.name, v.value); err != nil {
			return env, err
		}
	}
	if env.dataPath != "" && token == "" {
		return env, &StartupError{Message: EnvDataPath + " is set but " + EnvToken +
			" is missing or empty: refusing to open a data channel anyone could connect to"}
	}
	var err error
	if env.maxFrameSize, err = sizeLimit(EnvMaxFrameSize, os.Getenv(EnvMaxFrameSize)); err != nil {
		return env, err
	}
	if raw := os.Getenv(EnvMaxLineLength); raw != "" { // unset: Config.MaxLineLength applies
		if env.maxLineLength, err = sizeLimit(EnvMaxLineLength, raw); err != nil {
			return env, err
		}
	}
	if env.noTracebacks, err = tracebacksOff(os.Getenv(EnvTracebacks)); err != nil {
		return env, err
	}
	return env, nil
}

// utf8Text checks a variable whose value is a string of the protocol (PROTOCOL.md 5.1, Encoding):
// the worker id and the namespace are echoed in $/hello, the data path in $/ready, and bytes that
// are not UTF-8 would fail there, as a codec error that names neither the variable nor its value.
// Go hands the worker the environment's bytes, whatever the locale, so they are checked here: a
// value that is not valid UTF-8 is a start-up error naming the variable, the value (its invalid
// bytes escaped) and the rule.
func utf8Text(name, raw string) error {
	if utf8.ValidString(raw) {
		return nil
	}
	return &StartupError{Message: fmt.Sprintf("invalid %s %q: not valid UTF-8 (a parent passes the worker id, the namespace and the data path as UTF-8, whatever its locale)",
		name, raw)}
}

// tracebacksOff reads ASPECT_IPC_TRACEBACKS (PROTOCOL.md 5.3): absent, empty or "1" sends
// tracebacks, "0" does not; anything else is a start-up error naming the variable, the value and
// the rule.
func tracebacksOff(raw string) (bool, error) {
	switch raw {
	case "", "1":
		return false, nil
	case "0":
		return true, nil
	}
	return false, &StartupError{Message: fmt.Sprintf(`invalid %s %q: expected "0" (off) or "1" (on), or unset`, EnvTracebacks, raw)}
}

// sizeLimit reads a size limit variable (PROTOCOL.md section 5): empty (or absent) gives the
// default; otherwise 1 to 10 ASCII digits (leading zeros allowed) with a value in
// [1024, 4294967295]. Anything else is a start-up error naming the variable, the value and the
// rule.
func sizeLimit(name, raw string) (int64, error) {
	if raw == "" {
		if name == EnvMaxLineLength {
			return DefaultMaxLineLength, nil
		}
		return DefaultMaxFrameSize, nil
	}
	valid := len(raw) <= 10
	for i := 0; i < len(raw) && valid; i++ {
		valid = raw[i] >= '0' && raw[i] <= '9'
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if !valid || err != nil || n < minEnvLimit || n > maxEnvLimit {
		return 0, &StartupError{Message: fmt.Sprintf("invalid %s %q: expected 1 to 10 ASCII digits (no sign, no spaces) with a value from %d to %d",
			name, raw, minEnvLimit, maxEnvLimit)}
	}
	return n, nil
}
