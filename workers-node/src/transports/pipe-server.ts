/**
 * The data channel's listening side: a Unix domain socket (a named pipe on Windows) that the worker
 * listens on and the parent connects to (PROTOCOL.md section 7.3).
 *
 * Before listening it inspects the path with `lstat` (a symlink is never followed): nothing there
 * is fine; a socket nobody accepts on is stale and removed when `unlinkOnListen` is set; a socket
 * that accepts a connection belongs to a live worker and is left alone; anything else is never
 * touched. The socket file is created with mode 0600 by bind() itself (the umask is narrowed around
 * `listen`, which binds synchronously); its mode is never changed by path afterwards, since a chmod
 * by path follows a symlink that someone able to write to the directory may have swapped in. Once
 * listening, `lstat` must find a socket of this user's with that mode, or listening fails. On close
 * the file is removed only if it is still the one this server created.
 */
import { lstatSync, unlinkSync, type Stats } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";

import { StartupError, TransportError, describeError } from "../errors.js";
import { socketTransport } from "./socket-transport.js";
import type { StreamTransport } from "./stream-transport.js";

/** How long the liveness probe of an existing socket may take before the socket counts as live. */
const PROBE_TIMEOUT_MS = 1_000;

/** Options of {@link TransportFactory.createPipeServer}. */
export interface PipeServerOptions {
  /** Remove a stale socket file (one nobody accepts connections on) before listening. Default false. */
  unlinkOnListen?: boolean | undefined;
  /** Permissions of the socket file (Unix). Default 0o600: only the same user can connect. */
  mode?: number | undefined;
}

/** A listening socket that hands each accepted connection over as a transport. */
export class PipeServer {
  private readonly server: Server;
  private listeners: Array<(transport: StreamTransport, socket: Socket) => void> = [];
  private boundPath: string | null = null;
  private identity: { dev: number; ino: number } | null = null;
  private closed = false;

  constructor(private readonly options: PipeServerOptions = {}) {
    this.server = createServer((socket) => {
      if (this.closed) {
        socket.destroy();
        return;
      }
      const transport = socketTransport(socket, `data connection on ${this.boundPath ?? "?"}`);
      for (const listener of this.listeners) listener(transport, socket);
    });
    // Errors after listen() (EMFILE on accept...) must not crash the worker; accept goes on.
    this.server.on("error", () => undefined);
  }

  /** @internal The socket file created by {@link listen} (path and inode), or null. */
  get socketFile(): { path: string; inode: number } | null {
    return this.boundPath === null || this.identity === null ? null : { path: this.boundPath, inode: this.identity.ino };
  }

  /** The path listened on, or null before {@link listen}. */
  get path(): string | null {
    return this.boundPath;
  }

  /** Registers a listener for accepted connections. */
  onConnection(listener: (transport: StreamTransport, socket: Socket) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Listens on `path`.
   * @throws {StartupError} if the path is in use by a live worker, exists and is not a socket, is a
   *   stale socket while `unlinkOnListen` is off, or cannot be bound; or if, once bound, the path
   *   is not this user's socket with the requested mode (replaced meanwhile, or a umask that cannot
   *   be narrowed in a worker thread).
   */
  async listen(path: string): Promise<void> {
    if (this.boundPath !== null) throw new TransportError(`already listening on ${this.boundPath}`);
    const windows = process.platform === "win32";
    if (!windows) await this.clearPath(path);

    const mode = this.options.mode ?? 0o600;
    const umask = windows ? null : 0o777 & ~mode;
    let previousUmask: number | null = null;
    if (umask !== null) {
      try {
        previousUmask = process.umask(umask);
      } catch {
        // Worker threads cannot change the umask: go on only if the current one already gives `mode`.
        const current = process.umask();
        if (current !== umask) {
          throw new StartupError(
            `cannot create the socket ${path} with mode ${octal(mode)}: the umask (${octal(current)}) cannot be changed ` +
              `in a worker thread; set it to ${octal(umask)} first, or listen from the main thread`,
          );
        }
      }
    }
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        reject(
          error.code === "EADDRINUSE"
            ? new StartupError(`address in use by a live worker: ${path}`)
            : new StartupError(`cannot listen on ${path}: ${describeError(error)}`, { cause: error }),
        );
      };
      this.server.once("error", onError);
      // bind() runs synchronously inside listen() (exclusive: this process binds, even in a cluster
      // worker), so the socket file is created under the narrowed umask; the previous umask is
      // back before anything else in this process runs.
      try {
        this.server.listen({ path, exclusive: true }, () => {
          this.server.off("error", onError);
          resolve();
        });
      } finally {
        if (previousUmask !== null) process.umask(previousUmask);
      }
    });

    if (!windows) this.identity = await this.checkSocketFile(path, mode);
    this.boundPath = path;
  }

  /**
   * Checks with `lstat` that `path` is the socket just bound: a socket, this user's, with `mode`.
   * Returns its identity; otherwise stops listening and throws (whatever is at the path now, if
   * not ours, is left there).
   */
  private async checkSocketFile(path: string, mode: number): Promise<{ dev: number; ino: number }> {
    let stats: Stats;
    try {
      stats = lstatSync(path);
    } catch (error) {
      this.abandon();
      throw new StartupError(`cannot inspect the socket ${path} after bind: ${describeError(error)}`, { cause: error });
    }
    const euid = process.geteuid?.();
    if (!stats.isSocket() || (euid !== undefined && stats.uid !== euid)) {
      this.abandon();
      const kind = stats.isSymbolicLink() ? "a symlink" : stats.isSocket() ? `a socket of uid ${stats.uid}` : "not a socket";
      throw new StartupError(`the socket file ${path} was replaced after bind (now ${kind}): refusing to start`);
    }
    if ((stats.mode & 0o777) !== mode) {
      // Ours, but not as asked (the umask changed by another thread meanwhile...): closing removes it.
      this.closed = true;
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
      throw new StartupError(`the socket ${path} was created with mode ${octal(stats.mode & 0o777)}, not ${octal(mode)}`);
    }
    return { dev: stats.dev, ino: stats.ino };
  }

  /**
   * Stops accepting without closing the listener: libuv unlinks the bound path when a listening pipe
   * closes, whatever is there now, and what is there now is not ours. The listener stays open and
   * idle until the process exits.
   */
  private abandon(): void {
    this.closed = true;
    this.server.unref();
  }

  /** Stops listening and removes the socket file if it is still ours. Open connections are not touched. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.server.listening) return;
    if (this.boundPath !== null && this.identity !== null && !this.ownsSocketFile()) {
      // libuv unlinks the bound path when a listening pipe closes, whatever is there now: someone
      // else's socket must not go with ours. The listener stays open (and idle, see the connection
      // handler) until the process exits instead.
      this.server.unref();
      return;
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.removeSocketFile();
  }

  /**
   * Removes the socket file, synchronously, if it is still the one this server created (same
   * device and inode). Safe to call from a process 'exit' handler.
   */
  removeSocketFile(): void {
    if (this.boundPath === null || !this.ownsSocketFile()) return;
    try {
      unlinkSync(this.boundPath);
    } catch {
      // Gone already, or not ours to remove: either way nothing is left to do.
    }
  }

  /** Whether the file at the bound path is still the socket this server created (same device and inode). */
  private ownsSocketFile(): boolean {
    const path = this.boundPath;
    const identity = this.identity;
    if (path === null || identity === null) return false;
    let stats: Stats;
    try {
      stats = lstatSync(path);
    } catch {
      return false;
    }
    return stats.isSocket() && stats.dev === identity.dev && stats.ino === identity.ino;
  }

  /** Applies the rules of PROTOCOL.md 7.3 to whatever exists at `path`. */
  private async clearPath(path: string): Promise<void> {
    let stats: Stats;
    try {
      stats = lstatSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw new StartupError(`cannot inspect ${path}: ${describeError(error)}`, { cause: error });
    }
    if (!stats.isSocket()) throw new StartupError(`path exists and is not a socket: ${path}`);
    const state = await probe(path);
    if (state === "live") throw new StartupError(`address in use by a live worker: ${path}`);
    if (state === "gone") return;
    if (!this.options.unlinkOnListen) {
      throw new StartupError(
        `stale socket file at ${path} (nobody accepts connections on it); remove it or pass unlinkOnListen: true`,
      );
    }
    try {
      unlinkSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
        throw new StartupError(`cannot remove stale socket ${path}: ${describeError(error)}`, { cause: error });
      }
    }
  }
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, "0")}`;
}

/** Tries to connect: "live" if someone accepts, "stale" if refused, "gone" if the file vanished. */
function probe(path: string): Promise<"live" | "stale" | "gone"> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const timer = setTimeout(() => finish("live"), PROBE_TIMEOUT_MS);
    function finish(state: "live" | "stale" | "gone"): void {
      clearTimeout(timer);
      socket.destroy();
      resolve(state);
    }
    socket.once("connect", () => finish("live"));
    socket.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ECONNREFUSED") finish("stale");
      else if (error.code === "ENOENT") finish("gone");
      else if (error.code === "EAGAIN") finish("live"); // a full backlog: someone is listening
      else {
        clearTimeout(timer);
        socket.destroy();
        reject(new StartupError(`cannot check whether ${path} is in use: ${describeError(error)}`, { cause: error }));
      }
    });
  });
}
