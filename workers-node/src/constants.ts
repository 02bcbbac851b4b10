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
 * How deep values may nest, in both codecs. The spec requires at least 512; the guard keeps a
 * hostile payload from exhausting the stack.
 */
export const MAX_NESTING_DEPTH = 1000;

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
} as const;

/** Human-readable size for error messages: "5 GiB", "1.5 MiB", "300 bytes". */
export function formatSize(bytes: number): string {
  const units: Array<[number, string]> = [
    [1024 ** 3, "GiB"],
    [1024 ** 2, "MiB"],
    [1024, "KiB"],
  ];
  for (const [size, unit] of units) {
    if (bytes >= size) {
      const value = bytes / size;
      return `${Number.isInteger(value) ? value : value.toFixed(1)} ${unit}`;
    }
  }
  return `${bytes} bytes`;
}
