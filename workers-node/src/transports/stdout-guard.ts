/**
 * Keeps the real stdout for the control channel.
 *
 * The control channel is the process's stdout, and a stray `console.log` or `process.stdout.write`
 * from the program (or a library it uses) would corrupt it. `takeOverStdout` captures the real
 * write function once, then replaces `process.stdout.write` with one that forwards to stderr, which
 * the parent shows as log output. `console.log` looks `write` up on the stream at each call, so it
 * is redirected too. Native code writing to file descriptor 1 directly is out of reach; the parent
 * treats such lines as worker output (PROTOCOL.md 1.5).
 */
import type { WriteFunction } from "./stream-transport.js";

let realWrite: WriteFunction | null = null;

/**
 * Redirects the program's stdout writes to stderr and returns the real stdout write function.
 * Idempotent: later calls return the same function.
 */
export function takeOverStdout(): WriteFunction {
  if (realWrite !== null) return realWrite;
  const stdout = process.stdout;
  const original = stdout.write.bind(stdout) as (chunk: Uint8Array, callback: (error?: Error | null) => void) => boolean;
  realWrite = (chunk, callback) => original(chunk, callback);
  const toStderr = (...args: unknown[]): boolean =>
    (process.stderr.write as (...forwarded: unknown[]) => boolean).apply(process.stderr, args);
  stdout.write = toStderr as typeof stdout.write;
  return realWrite;
}
