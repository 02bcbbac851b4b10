/**
 * Keeps the real stdout for the control channel.
 *
 * The control channel is the process's stdout, and a stray `console.log` or `process.stdout.write`
 * from the program (or a library it uses) would corrupt it. So would a child process that inherits
 * file descriptor 1 (`spawn(..., { stdio: "inherit" })`) or native code writing to it: a line of
 * theirs without a newline would glue itself to the SDK's next message, and that message would be
 * lost. `takeOverStdout` does what the Python and Go SDKs do with `dup`/`dup2`:
 *
 * - on Linux, when stdout and stderr are pipes (as under an aspect-ipc parent), it opens the stdout
 *   pipe again on a descriptor of the protocol's own (close-on-exec: children do not inherit it),
 *   then points descriptor 1 at stderr. Node has no `dup2`: descriptor 1 is closed and stderr's pipe
 *   opened again, which takes the lowest free descriptor, 1. From then on everything written to
 *   descriptor 1, by anyone, reaches the parent as stderr, and the protocol writes to its own
 *   descriptor, synchronously, as Node writes to a stdout pipe on Linux;
 * - elsewhere (another system, a terminal, a file) descriptor 1 stays the protocol's, and only the
 *   program's JavaScript writes are redirected (below).
 *
 * Either way `process.stdout.write` is replaced with one that forwards to stderr, which the parent
 * shows as log output; `console.log` looks `write` up on the stream at each call, so it is
 * redirected too.
 */
import { closeSync, constants, fstatSync, openSync, writeSync } from "node:fs";

import { StartupError } from "../errors.js";
import type { WriteFunction } from "./stream-transport.js";

let realWrite: WriteFunction | null = null;

/**
 * Redirects the program's stdout writes to stderr and returns the function that writes to the
 * real stdout. Idempotent: later calls return the same function.
 * @throws {StartupError} if descriptor 1 was closed and another thread's open took it before stderr could
 *   (the program's output would go there): nothing the program can repair, so nothing is served.
 */
export function takeOverStdout(): WriteFunction {
  if (realWrite !== null) return realWrite;
  const stdout = process.stdout;
  const own = moveProtocolDescriptor();
  if (own !== null) {
    realWrite = (chunk, callback) => {
      let failure: unknown = null;
      try {
        writeWhole(own, chunk);
      } catch (error) {
        failure = error; // EPIPE: the parent stopped reading (Node ignores SIGPIPE)
      }
      // Callbacks of Node's streams never run inside write(): the transport counts on that.
      process.nextTick(callback, failure as Error | null);
      return true;
    };
  } else {
    const original = stdout.write.bind(stdout) as (chunk: Uint8Array, callback: (error?: Error | null) => void) => boolean;
    realWrite = (chunk, callback) => original(chunk, callback);
  }
  const toStderr = (...args: unknown[]): boolean =>
    (process.stderr.write as (...forwarded: unknown[]) => boolean).apply(process.stderr, args);
  stdout.write = toStderr as typeof stdout.write;
  return realWrite;
}

/**
 * Opens the stdout pipe again for the protocol and points descriptor 1 at stderr's pipe; returns
 * the protocol's descriptor, or null (nothing changed) where that cannot be done.
 */
function moveProtocolDescriptor(): number | null {
  if (process.platform !== "linux") return null; // /dev/fd elsewhere shares blocking modes: not worth it
  try {
    fstatSync(0); // throws if descriptor 0 is closed: the open below would then take 0, not 1
    if (!fstatSync(1).isFIFO() || !fstatSync(2).isFIFO()) return null;
  } catch {
    return null;
  }
  let own: number;
  try {
    own = openSync("/proc/self/fd/1", constants.O_WRONLY); // a new, blocking, close-on-exec descriptor
  } catch {
    return null; // no /proc, or no permission: descriptor 1 stays the protocol's
  }
  closeSync(1);
  let moved: number;
  try {
    moved = openSync("/proc/self/fd/2", constants.O_WRONLY);
  } catch {
    restore(own);
    return null;
  }
  if (moved !== 1) {
    closeSync(moved);
    throw new StartupError(
      `could not point file descriptor 1 at stderr: another open took descriptor 1 ` +
        `(the process got ${moved}); create the Worker before starting file operations`,
    );
  }
  return own;
}

/** Descriptor 1 was closed and stderr could not be opened: give descriptor 1 back to the protocol. */
function restore(own: number): void {
  const back = openSync(`/proc/self/fd/${own}`, constants.O_WRONLY);
  closeSync(own);
  if (back !== 1) {
    closeSync(back);
    throw new StartupError("could not restore file descriptor 1 (stdout) after failing to move it");
  }
}

/** Writes all of `chunk` to the blocking descriptor `fd` (a write may take part of it). */
function writeWhole(fd: number, chunk: Uint8Array): void {
  let offset = 0;
  while (offset < chunk.length) {
    offset += writeSync(fd, chunk, offset, chunk.length - offset);
  }
}
