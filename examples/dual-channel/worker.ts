/**
 * The dual-channel example's worker, in Node.js: light commands on the control channel (stdio,
 * JSON), bulk data on the data channel (Unix socket, MessagePack). Its log lines go to stderr.
 *
 * Build: `cd workers-node && npm ci && npm run build`; run by the parent as
 * `node examples/dual-channel/build/worker.js`.
 */
import { Worker } from "@aspect-ipc/worker";

interface Item {
  id: number;
  value: number;
}

const startedAt = Date.now();
const log = (line: string): void => console.error(`Worker: ${line}`);

log("Starting...");
log("Setting up control channel (stdio)...");

const worker = new Worker({
  hooks: {
    controlReady: () => {
      log("Control channel ready");
      if (worker.dataPath !== null) log(`Setting up data channel at ${worker.dataPath}...`);
    },
    dataListening: () => log("Data channel listening"),
    dataConnected: () => log("Data channel client connected"),
    // Both run before the $/hello response is written: the parent prints its lines after these.
    dataReady: () => log("Data channel ready"),
    ready: () => log("All channels ready"),
  },
});

// ---- control channel: small, rare commands ----------------------------------------------------

worker.control.onRequest("getStatus", () => ({
  status: "running",
  uptime: Date.now() - startedAt,
}));

worker.control.onRequest("getConfig", () => ({
  version: "1.0.0",
  features: ["dual-channel", "msgpack", "hot-reload"],
}));

worker.control.onRequest("shutdown", () => {
  log("Shutting down...");
  // Not awaited: the graceful shutdown waits for this handler's response to be written, then
  // closes the data channel, removes the socket file and exits with code 0.
  void worker.shutdown();
  return null;
});

// ---- data channel: bulk payloads ----------------------------------------------------------------

worker.data.onRequest("processItems", ({ items }: { items: Item[] }) => {
  log(`Processing ${items.length} items...`);
  let sum = 0;
  for (const item of items) sum += item.value; // in order, float64: bit-identical in every SDK
  return { processed: items.length, sum };
});

worker.data.onRequest("processMatrix", ({ matrix }: { matrix: number[][] }) => {
  const rows = matrix.length;
  const columns = rows > 0 ? (matrix[0] as number[]).length : 0;
  log(`Processing ${rows}x${columns} matrix...`);
  let sum = 0;
  for (const row of matrix) for (const value of row) sum += value; // row by row, in order
  return { sum, avg: sum / (rows * columns) };
});

await worker.start();
