/**
 * What the parent tells the worker through its environment (PROTOCOL.md section 5).
 */
import { DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_LINE_LENGTH, Env, MAX_FRAME_SIZE_LIMIT, MIN_SIZE_LIMIT } from "../constants.js";
import { StartupError } from "../errors.js";

/** The worker's settings, read once at start-up. */
export interface WorkerEnvironment {
  /** Where to listen for the data channel, or null for a control-only worker. */
  readonly dataPath: string | null;
  /** The `$/hello` token (never logged), or null without a data channel. */
  readonly token: string | null;
  /** `ASPECT_IPC_WORKER_ID`, or null when the worker was not started by a parent. */
  readonly workerId: string | null;
  /** `ASPECT_IPC_NAMESPACE`, or null. */
  readonly namespace: string | null;
  /** The data channel's frame limit, both directions. */
  readonly maxFrameSize: number;
  /** The control channel's line limit, both directions (`ASPECT_IPC_MAX_LINE_LENGTH`). */
  readonly maxLineLength: number;
  /** Whether handler errors carry their stack (`ASPECT_IPC_TRACEBACKS`, PROTOCOL.md 5.3). */
  readonly sendTracebacks: boolean;
}

/**
 * Reads the environment and removes the token from it, so that processes the worker starts do not
 * inherit it.
 * @throws {StartupError} if the data path is set without a token, or a size limit is invalid.
 *   The token is removed even then.
 */
export function readEnvironment(env: NodeJS.ProcessEnv): WorkerEnvironment {
  const token = env[Env.Token];
  delete env[Env.Token];

  const dataPath = nonEmpty(env[Env.DataPath]);
  if (dataPath !== null && (token === undefined || token === "")) {
    throw new StartupError(
      `${Env.DataPath} is set but ${Env.Token} is missing or empty: refusing to open a data channel anyone could use`,
    );
  }

  const maxFrameSize = readSizeLimit(env, Env.MaxFrameSize, DEFAULT_MAX_FRAME_SIZE);
  const maxLineLength = readSizeLimit(env, Env.MaxLineLength, DEFAULT_MAX_LINE_LENGTH);
  const sendTracebacks = readTracebacks(env);

  return {
    dataPath,
    token: dataPath === null ? null : (token as string),
    workerId: nonEmpty(env[Env.WorkerId]),
    namespace: nonEmpty(env[Env.Namespace]),
    maxFrameSize,
    maxLineLength,
    sendTracebacks,
  };
}

/**
 * `ASPECT_IPC_TRACEBACKS` (PROTOCOL.md 5.3): absent, empty or "1" sends stacks, "0" does not.
 * @throws {StartupError} for any other value, naming the variable, the value (quoted) and the rule.
 */
export function readTracebacks(env: NodeJS.ProcessEnv): boolean {
  const raw = env[Env.Tracebacks];
  if (raw === undefined || raw === "" || raw === "1") return true;
  if (raw === "0") return false;
  throw new StartupError(`invalid ${Env.Tracebacks} ${JSON.stringify(raw)}: expected "0" (off) or "1" (on), or unset`);
}

/**
 * A size limit from the environment (decisions D13, D15): absent or empty gives the default;
 * otherwise 1 to 10 ASCII digits and nothing else, with a value from 1024 to 2^32 - 1.
 * @throws {StartupError} naming the variable, the value (quoted) and the rule.
 */
export function readSizeLimit(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = /^[0-9]{1,10}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(value >= MIN_SIZE_LIMIT && value <= MAX_FRAME_SIZE_LIMIT)) {
    throw new StartupError(
      `${name} is ${JSON.stringify(raw)}: it must be 1 to 10 ASCII digits (no sign, spaces or units) ` +
        `with a value from ${MIN_SIZE_LIMIT} to ${MAX_FRAME_SIZE_LIMIT}, or empty for the default (${fallback})`,
    );
  }
  return value;
}

function nonEmpty(value: string | undefined): string | null {
  return value === undefined || value === "" ? null : value;
}
