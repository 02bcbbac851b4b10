/**
 * Keeps the real stdin and stdout for the control channel (PROTOCOL.md 1.5).
 *
 * The control channel is the process's stdin and stdout. A stray `console.log` or
 * `process.stdout.write` from the program (or a library it uses) would corrupt it; so would a child
 * process that inherits file descriptor 1 (`spawn(..., { stdio: "inherit" })`) or native code
 * writing to it: a line of theirs without a newline would glue itself to the SDK's next message,
 * and that message would be lost. And a child that inherits descriptor 0 and reads it (a tool that
 * polls its stdin for keyboard commands) would take the parent's messages. The Python and Go SDKs
 * use `dup`/`dup2`; Node has neither, so, on Linux, when the descriptors are pipes (as under an
 * aspect-ipc parent), this module:
 *
 * - opens the stdin and stdout pipes again, through `/proc/self/fd`, on descriptors of the
 *   protocol's own (close-on-exec: children do not inherit them);
 * - puts `/dev/null` on descriptor 0 and stderr's pipe on descriptor 1: it closes the descriptor
 *   and opens the file, which takes the lowest free descriptor, the one just closed.
 *
 * From then on whatever reads descriptor 0 reads end of file, whatever writes descriptor 1 reaches
 * the parent as stderr, and the protocol reads and writes its own descriptors (stdout
 * synchronously, as Node writes a stdout pipe on Linux). Elsewhere (another system, a terminal, a
 * file, a socket) descriptors 0 and 1 stay the protocol's, and only the program's JavaScript
 * writes are redirected: `process.stdout.write` is replaced with one that forwards to stderr, which
 * the parent shows as log output (`console.log` looks `write` up at each call, so it follows).
 */
import { closeSync, constants, fstatSync, openSync, writeSync } from "node:fs";
import { Socket } from "node:net";
import type { Readable } from "node:stream";

import { StartupError } from "../errors.js";
import type { WriteFunction } from "./stream-transport.js";

let realWrite: WriteFunction | null = null;
let realInput: Readable | null = null;

/**
 * Redirects the program's stdout writes to stderr and returns the function that writes to the
 * real stdout. Idempotent: later calls return the same function.
 * @throws {StartupError} if descriptor 1 could not be given to stderr (see `openOnto`).
 */
export function takeOverStdout(): WriteFunction {
  if (realWrite !== null) return realWrite;
  const stdout = process.stdout;
  const own = pipesOnLinux(1, 2) ? moveDescriptor(1, "/proc/self/fd/2", constants.O_WRONLY) : null;
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
 * The stream the control channel reads: the real stdin on a descriptor of the protocol's own, with
 * `/dev/null` on descriptor 0, where that can be done (then `process.stdin` reads end of file);
 * else `process.stdin`. Idempotent. Call it before anything reads `process.stdin`.
 * @throws {StartupError} if descriptor 0 could not be given to `/dev/null` (see `openOnto`).
 */
export function takeOverStdin(): Readable {
  if (realInput !== null) return realInput;
  const own = pipesOnLinux(0) ? moveDescriptor(0, "/dev/null", constants.O_RDONLY) : null;
  realInput = own === null ? process.stdin : new Socket({ fd: own, readable: true, writable: false });
  return realInput;
}

/** Linux, and every descriptor of `fds` a pipe (all open, or none is moved). */
function pipesOnLinux(...fds: number[]): boolean {
  // /dev/fd elsewhere shares the open file (and its blocking mode) with the descriptor: not done.
  if (process.platform !== "linux") return false;
  try {
    for (let fd = 0; fd <= 2; fd++) fstatSync(fd); // throws if one is closed: opens would take it
    return fds.every((fd) => fstatSync(fd).isFIFO());
  } catch {
    return false;
  }
}

/**
 * Opens the pipe on descriptor `fd` again for the protocol and puts `path` (opened with `flags`)
 * on `fd`; returns the protocol's descriptor, or null when nothing was changed.
 */
function moveDescriptor(fd: number, path: string, flags: number): number | null {
  const mode = fd === 0 ? constants.O_RDONLY : constants.O_WRONLY;
  let own: number;
  try {
    own = openSync(`/proc/self/fd/${fd}`, mode); // a new, blocking, close-on-exec descriptor
  } catch {
    return null; // no /proc, or no permission: the descriptor stays the protocol's
  }
  try {
    replace(fd, path, flags);
  } catch (error) {
    if (error instanceof StartupError) throw error;
    openOnto(fd, `/proc/self/fd/${own}`, mode); // it could not be opened: the pipe goes back
    closeSync(own);
    return null;
  }
  return own;
}

/** Closes descriptor `fd` and opens `path` in its place (see `openOnto`). */
function replace(fd: number, path: string, flags: number): void {
  closeSync(fd);
  openOnto(fd, path, flags);
}

/**
 * Opens `path` onto the closed descriptor `fd`: an open takes the lowest free descriptor.
 * @throws {StartupError} if another thread's open took `fd` first; other errors as thrown.
 */
function openOnto(fd: number, path: string, flags: number): void {
  const opened = openSync(path, flags);
  if (opened !== fd) {
    closeSync(opened);
    throw new StartupError(
      `could not put ${path} on file descriptor ${fd}: another open took it (the process got ` +
        `${opened}); create the Worker before starting file operations`,
    );
  }
}

/** Writes all of `chunk` to the blocking descriptor `fd` (a write may take part of it). */
function writeWhole(fd: number, chunk: Uint8Array): void {
  let offset = 0;
  while (offset < chunk.length) {
    offset += writeSync(fd, chunk, offset, chunk.length - offset);
  }
}
