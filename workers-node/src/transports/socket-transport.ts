/** Transports over stdio and over connected sockets. */
import { connect, type Socket } from "node:net";

import { TransportError, describeError } from "../errors.js";
import { StreamTransport } from "./stream-transport.js";
import { takeOverStdin, takeOverStdout } from "./stdio-guard.js";

/** How long a closing socket may take to flush before it is destroyed. */
const SOCKET_CLOSE_TIMEOUT_MS = 2_000;

/** A transport over a connected socket (one data connection). */
export function socketTransport(socket: Socket, description: string): StreamTransport {
  return new StreamTransport({
    readable: socket,
    writable: socket,
    description,
    coalesce: true,
    shutdown: () =>
      new Promise<void>((resolve) => {
        if (socket.destroyed) return resolve();
        socket.once("close", () => resolve());
        // end() flushes what was written, then sends FIN ('finish'). Nothing more is wanted from
        // the peer, so the socket goes then, without waiting for the peer's own FIN (a parent that
        // keeps its end open must not delay the worker's exit, D4); a peer that never reads cannot
        // hold us past the timeout either.
        socket.once("finish", () => socket.destroy());
        socket.end();
        setTimeout(() => socket.destroy(), SOCKET_CLOSE_TIMEOUT_MS).unref();
      }),
    destroy: () => socket.destroy(),
  });
}

/**
 * The control channel's transport: the real stdin for reading, the real stdout for writing.
 * Creating it takes both over (see `stdio-guard.ts`): the program's own stdout writes go to
 * stderr, and where descriptors can be moved, descriptor 0 reads `/dev/null` and descriptor 1
 * writes to stderr.
 */
export function stdioTransport(): StreamTransport {
  const input = takeOverStdin();
  const write = takeOverStdout();
  return new StreamTransport({
    readable: input,
    writable: process.stdout,
    write,
    description: "stdio",
    shutdown: async () => {
      // stdout stays open: it cannot be closed, and pending lines must still reach the parent.
      input.pause();
      input.destroy();
    },
  });
}

/** Connects to a listening socket (a data path) and resolves with its transport. */
export function connectSocket(path: string): Promise<StreamTransport> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const onError = (error: Error): void => {
      reject(new TransportError(`cannot connect to ${path}: ${describeError(error)}`, { cause: error }));
    };
    socket.once("error", onError);
    socket.once("connect", () => {
      socket.off("error", onError);
      resolve(socketTransport(socket, `socket ${path}`));
    });
  });
}
