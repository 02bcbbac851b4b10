/**
 * What the parent tells the worker through its environment (PROTOCOL.md section 5).
 */
import { DEFAULT_MAX_FRAME_SIZE, Env, MAX_FRAME_SIZE_LIMIT } from "../constants.js";
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
}

/**
 * Reads the environment and removes the token from it, so that processes the worker starts do not
 * inherit it.
 * @throws {StartupError} if the data path is set without a token, or the frame size is invalid.
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

  let maxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  const rawSize = nonEmpty(env[Env.MaxFrameSize]);
  if (rawSize !== null) {
    const size = /^[0-9]+$/.test(rawSize) ? Number(rawSize) : Number.NaN;
    if (!Number.isSafeInteger(size) || size < 1 || size > MAX_FRAME_SIZE_LIMIT) {
      throw new StartupError(
        `${Env.MaxFrameSize} must be a decimal integer from 1 to ${MAX_FRAME_SIZE_LIMIT}, got ${JSON.stringify(rawSize)}`,
      );
    }
    maxFrameSize = size;
  }

  return {
    dataPath,
    token: dataPath === null ? null : (token as string),
    workerId: nonEmpty(env[Env.WorkerId]),
    namespace: nonEmpty(env[Env.Namespace]),
    maxFrameSize,
  };
}

function nonEmpty(value: string | undefined): string | null {
  return value === undefined || value === "" ? null : value;
}
