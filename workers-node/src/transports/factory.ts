/** Creates the transports a worker needs (the design's `TransportFactory`). */
import { PipeServer, type PipeServerOptions } from "./pipe-server.js";
import { connectSocket, stdioTransport } from "./socket-transport.js";
import type { Transport } from "./types.js";

/** Entry point for transports. */
export const TransportFactory = {
  /**
   * The control channel's transport: reads the real stdin, writes the real stdout. From this call
   * on, the program's own writes to `process.stdout` (`console.log` included) go to stderr, so they
   * cannot corrupt the channel; on Linux, with pipes, descriptor 1 writes to stderr and descriptor 0
   * reads `/dev/null`, for child processes and native code too (PROTOCOL.md 1.5).
   */
  createStdio(): Transport {
    return stdioTransport();
  },

  /** A data-channel server; call `listen(path)` on it and `onConnection` for each accepted connection. */
  createPipeServer(options: PipeServerOptions = {}): PipeServer {
    return new PipeServer(options);
  },

  /** Connects to a listening data path (the parent's side; handy for tests and tools). */
  connectPipe(path: string): Promise<Transport> {
    return connectSocket(path);
  },
};
