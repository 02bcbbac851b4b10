/** Creates the transports a worker needs (the design's `TransportFactory`). */
import { PipeServer, type PipeServerOptions } from "./pipe-server.js";
import { connectSocket, stdioTransport } from "./socket-transport.js";
import type { Transport } from "./types.js";

/** Entry point for transports. */
export const TransportFactory = {
  /**
   * The control channel's transport: reads stdin, writes the real stdout. From this call on, the
   * program's own writes to `process.stdout` (`console.log` included) go to stderr, so they cannot
   * corrupt the channel.
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
