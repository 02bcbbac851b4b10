/**
 * Taking the worker's process group down when its parent is gone (decision D19, PROTOCOL.md 8.3).
 *
 * The parent starts every worker as the leader of a process group of its own (a new session) so
 * that its signals reach what the worker started. A parent that died cannot send them: the worker
 * does it, on stdin EOF. The other members get SIGTERM as soon as the worker starts stopping, and
 * SIGKILL right before it exits if they are still there (the worker exits within 200 ms, D4). A
 * worker that does not lead its group does nothing: the group is someone else's (a shell's, a
 * test runner's).
 *
 * Node has no getpgrp(): a group whose id is our pid can only exist if we lead it, so
 * `process.kill(-pid, 0)` tells. Members are listed from /proc (Linux); where there is no /proc,
 * SIGTERM goes to the whole group, the worker included (its own SIGTERM finds it already stopping)
 * and SIGKILL is not sent.
 */
import { readFileSync, readdirSync } from "node:fs";

/** Whether this process leads a process group. */
export function leadsProcessGroup(): boolean {
  if (process.platform === "win32") return false;
  try {
    process.kill(-process.pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The other live members of the group this process leads (pids), or null where they cannot be listed. */
export function groupMembers(): number[] | null {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return null;
  }
  const own = process.pid;
  const members: number[] = [];
  for (const entry of entries) {
    if (!/^[0-9]+$/.test(entry) || Number(entry) === own) continue;
    try {
      // Field 5 of /proc/<pid>/stat is the process group; the command name (field 2) may contain
      // spaces and parentheses, so the fields are counted after its closing parenthesis.
      const stat = readFileSync(`/proc/${entry}/stat`, "latin1");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // fields[0] is the state (Z: a zombie, already dead), fields[2] the process group.
      if (Number(fields[2]) === own && fields[0] !== "Z") members.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return members;
}

/** Sends `signal` to every other member of the group this process leads. */
export function signalGroup(signal: "SIGTERM" | "SIGKILL"): void {
  if (!leadsProcessGroup()) return;
  const members = groupMembers();
  if (members === null) {
    if (signal === "SIGTERM") sendQuietly(-process.pid, signal);
    return;
  }
  for (const pid of members) sendQuietly(pid, signal);
}

function sendQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Gone already.
  }
}

/** How often the parent pid is compared with the one the worker started with. */
const PARENT_POLL_MS = 100;

/**
 * Calls `onGone` once if the worker is re-parented (its parent died while stdin stayed open, e.g.
 * inherited by a grandchild). The timer does not keep the process alive.
 */
export function watchParent(onGone: () => void): { stop(): void } {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(timer);
      onGone();
    }
  }, PARENT_POLL_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
