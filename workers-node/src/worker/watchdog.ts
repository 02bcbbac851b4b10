/**
 * The parent-death watchdog (decision D19c): a small thread that ends the worker when its parent
 * has died and the main thread cannot do it, because a handler blocks the event loop with
 * synchronous code (a CPU-bound loop, `Atomics.wait`).
 *
 * It compares the parent pid with the one the worker started with (a worker whose parent dies is
 * re-parented). Once it changes, the main thread gets WATCHDOG_BUDGET_MS to exit by itself (it
 * notices the same change, or stdin EOF, and exits within 200 ms when its loop is free). If the
 * process is still there, the thread does the clean-up the main thread cannot: removes the socket
 * file (if it is still ours), sends SIGTERM then SIGKILL to the rest of the process group (when
 * the worker leads it) and kills the process with SIGKILL (nobody is left to read an exit code).
 *
 * What it cannot do: notice stdin EOF while the parent lives on (closing stdin on purpose) and
 * the loop is blocked. Reading stdin from this thread would take the bytes away from the main
 * thread, and Node offers no way to poll a pipe without reading it; interrupting synchronous
 * JavaScript on the main thread from here takes native code. Such a worker exits as soon as its
 * handler returns.
 */
import { Worker as Thread } from "node:worker_threads";

/** How long the main thread gets to exit on its own after the parent's death. */
const WATCHDOG_BUDGET_MS = 300;
/** How often the parent pid is compared. */
const WATCHDOG_POLL_MS = 100;

/** The thread's code: plain CommonJS, self-contained (the SDK may be bundled into one file). */
const SOURCE = `
const { workerData } = require("node:worker_threads");
const fs = require("node:fs");
const { parent, path, inode, budgetMs, pollMs } = workerData;

function members() {
  const own = process.pid;
  let entries;
  try { entries = fs.readdirSync("/proc"); } catch { return null; }
  const found = [];
  for (const entry of entries) {
    if (!/^[0-9]+$/.test(entry) || Number(entry) === own) continue;
    try {
      const stat = fs.readFileSync("/proc/" + entry + "/stat", "latin1");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === own && fields[0] !== "Z") found.push(Number(entry));
    } catch {}
  }
  return found;
}

function signal(signalName) {
  let leads = false;
  try { process.kill(-process.pid, 0); leads = true; } catch {}
  if (!leads) return;
  for (const pid of members() || []) { try { process.kill(pid, signalName); } catch {} }
}

function end() {
  if (path !== null) {
    try { if (fs.lstatSync(path).ino === inode) fs.unlinkSync(path); } catch {}
  }
  signal("SIGTERM");
  setTimeout(() => {
    signal("SIGKILL");
    process.kill(process.pid, "SIGKILL");
  }, 100);
}

const timer = setInterval(() => {
  if (process.ppid === parent) return;
  clearInterval(timer);
  setTimeout(end, budgetMs);
}, pollMs);
`;

/**
 * Starts the watchdog thread (it does not keep the process alive). It costs a thread, about 8 MiB
 * of RSS and 1.5-5 ms of the main thread's time to start (measured): the worker starts it once
 * `$/ready` is written, so that it never delays start-up.
 * @param socket the data channel's socket file and its inode, removed by the watchdog if it acts.
 */
export function startWatchdog(socket: { path: string; inode: number } | null): void {
  if (process.platform === "win32") return;
  try {
    const thread = new Thread(SOURCE, {
      eval: true,
      workerData: { parent: process.ppid, path: socket?.path ?? null, inode: socket?.inode ?? 0, budgetMs: WATCHDOG_BUDGET_MS, pollMs: WATCHDOG_POLL_MS },
      // The thread needs little: a small heap, and it must not inherit the program's stdio use.
      resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 2 },
      stdout: true,
      stderr: true,
    });
    thread.on("error", () => undefined);
    thread.unref();
  } catch {
    // Best effort: without the thread, a worker whose loop is free still exits on its own.
  }
}
