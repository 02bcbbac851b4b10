package aspectipc

import (
	"fmt"
	"os"
	"strconv"
)

// Environment variables set by the parent (PROTOCOL.md section 5).
const (
	EnvProtocol     = "ASPECT_IPC_PROTOCOL"
	EnvWorkerID     = "ASPECT_IPC_WORKER_ID"
	EnvNamespace    = "ASPECT_IPC_NAMESPACE"
	EnvDataPath     = "ASPECT_IPC_DATA_PATH"
	EnvToken        = "ASPECT_IPC_TOKEN"
	EnvMaxFrameSize = "ASPECT_IPC_MAX_FRAME_SIZE"
)

// environment is what the worker learns from its environment at start-up.
type environment struct {
	workerID     string
	namespace    string
	dataPath     string
	token        []byte
	maxFrameSize int64
}

// readEnvironment reads the protocol's variables. The token is read once and removed from the
// process environment, so that processes the worker starts do not inherit it.
func readEnvironment() (environment, error) {
	token := os.Getenv(EnvToken)
	os.Unsetenv(EnvToken)
	env := environment{
		workerID:     os.Getenv(EnvWorkerID),
		namespace:    os.Getenv(EnvNamespace),
		dataPath:     os.Getenv(EnvDataPath),
		token:        []byte(token),
		maxFrameSize: DefaultMaxFrameSize,
	}
	if env.dataPath != "" && token == "" {
		return env, &StartupError{Message: EnvDataPath + " is set but " + EnvToken +
			" is missing or empty: refusing to open a data channel anyone could connect to"}
	}
	if raw, ok := os.LookupEnv(EnvMaxFrameSize); ok {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 1 || n > MaxFrameSizeLimit {
			return env, &StartupError{Message: fmt.Sprintf("invalid %s %q: expected a decimal integer from 1 to %d",
				EnvMaxFrameSize, raw, int64(MaxFrameSizeLimit))}
		}
		env.maxFrameSize = n
	}
	return env, nil
}
