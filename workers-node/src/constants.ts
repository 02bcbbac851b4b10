/** Protocol-wide constants (PROTOCOL.md sections 1, 2, 5, 7 and 10). */

/** The protocol version this SDK speaks. */
export const PROTOCOL_VERSION = 1;

/** Sent in `$/ready.params.sdk`. */
export const SDK_NAME = "aspect-ipc-node";

/** Sent in `$/ready.params.sdkVersion`. */
export const SDK_VERSION = "0.1.0";

/** Default control-channel line limit: 1 MiB. */
export const DEFAULT_MAX_LINE_LENGTH = 1_048_576;

/** Default data-channel frame limit: 64 MiB. */
export const DEFAULT_MAX_FRAME_SIZE = 67_108_864;

/** The largest frame size a 4-byte header can declare. */
export const MAX_FRAME_SIZE_LIMIT = 0xffff_ffff;

/**
 * How deep a message may nest, in both codecs and both directions (PROTOCOL.md 3.3, decision D11):
 * depth counts containers (arrays and maps), the message map itself being depth 1. A message at
 * depth 512 is read and written; 513 is a codec error.
 */
export const MAX_NESTING_DEPTH = 512;

/** The lowest limit `ASPECT_IPC_MAX_FRAME_SIZE` and `ASPECT_IPC_MAX_LINE_LENGTH` may set. */
export const MIN_SIZE_LIMIT = 1024;

/** Before `$/hello` succeeds, a data connection's first frame may declare at most this many bytes. */
export const PRE_HELLO_MAX_FRAME_SIZE = 65_536;

/** How long a data connection may stay without `$/hello` (PROTOCOL.md 7.4). */
export const DEFAULT_HELLO_TIMEOUT_MS = 10_000;

/** How long `$/shutdown` waits for in-flight handlers when it has no `timeout` param (PROTOCOL.md 8.1). */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 5_000;

/** The environment variables of PROTOCOL.md section 5. */
export const Env = {
  Protocol: "ASPECT_IPC_PROTOCOL",
  WorkerId: "ASPECT_IPC_WORKER_ID",
  Namespace: "ASPECT_IPC_NAMESPACE",
  DataPath: "ASPECT_IPC_DATA_PATH",
  Token: "ASPECT_IPC_TOKEN",
  MaxFrameSize: "ASPECT_IPC_MAX_FRAME_SIZE",
  MaxLineLength: "ASPECT_IPC_MAX_LINE_LENGTH",
  Tracebacks: "ASPECT_IPC_TRACEBACKS",
} as const;
