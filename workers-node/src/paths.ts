/**
 * Default data-channel paths (PROTOCOL.md section 6). Pure code; every SDK computes the same path
 * for the same inputs (spec/vectors/paths.json).
 */
import { createHash } from "node:crypto";

import { PathError } from "./errors.js";

/** Platforms the path rule knows; Node's `process.platform` values are accepted too. */
export type PathPlatform = "linux" | "darwin" | "windows" | NodeJS.Platform;

/** Options of {@link PipePath.forModule}. */
export interface ForModuleOptions {
  /** Target platform; default `process.platform`. */
  platform?: PathPlatform | undefined;
  /** Directory for the socket (Unix) or pipe namespace (Windows); default `/tmp` or `\\.\pipe`. */
  directory?: string | undefined;
}

const SAFE_CHARACTER = /^[A-Za-z0-9._-]$/u;

/** Computes data-channel paths. */
export const PipePath = {
  /**
   * The data path for worker `id` of manager `namespace`: `/tmp/<namespace>-<id>.sock` on Unix,
   * `\\.\pipe\<namespace>-<id>` on Windows, sanitized and shortened with a digest when needed.
   * @throws {PathError} `empty_name` for an empty namespace or id, `directory_too_long` when no
   *   name fits in the platform's limit.
   */
  forModule(namespace: string, id: string, options: ForModuleOptions = {}): string {
    if (namespace === "") throw new PathError("empty_name", "PipePath.forModule: the namespace must not be empty");
    if (id === "") throw new PathError("empty_name", "PipePath.forModule: the worker id must not be empty");

    const windows = isWindows(options.platform ?? process.platform);
    const limit = windows ? 256 : limitFor(options.platform ?? process.platform);
    const separator = windows ? "\\" : "/";
    const suffix = windows ? "" : ".sock";
    const given = options.directory || (windows ? "\\\\.\\pipe" : "/tmp");
    // "/run/app/" is "/run/app"; "/" becomes "", so that the root gets one separator, not two.
    let directory = given;
    while (directory.endsWith(separator)) directory = directory.slice(0, -1);

    const safeNamespace = sanitize(namespace);
    const safeId = sanitize(id);
    const base = `${safeNamespace}-${safeId}`;
    const prefix = directory + separator;
    const plain = prefix + base + suffix;
    const changed = safeNamespace !== namespace || safeId !== id;
    if (!changed && byteLength(plain) <= limit) return plain;

    const digest = createHash("sha256").update(namespace, "utf8").update(Buffer.of(0)).update(id, "utf8").digest("hex").slice(0, 16);
    const keep = limit - byteLength(prefix) - `-${digest}${suffix}`.length;
    if (keep < 1) {
      throw new PathError(
        "directory_too_long",
        `PipePath.forModule: directory ${JSON.stringify(directory)} is too long: no socket name fits in the ` +
          `platform's ${limit}-byte path limit; use a shorter directory`,
      );
    }
    return `${prefix}${base.slice(0, keep)}-${digest}${suffix}`;
  },
};

function isWindows(platform: PathPlatform): boolean {
  return platform === "windows" || platform === "win32";
}

/** 107 on Linux (`sun_path` is 108 bytes with the NUL); 103 on macOS and the BSDs. */
function limitFor(platform: PathPlatform): number {
  return platform === "linux" || platform === "android" ? 107 : 103;
}

/** Replaces every code point outside `[A-Za-z0-9._-]` by `_`. */
function sanitize(name: string): string {
  let result = "";
  for (const character of name) result += SAFE_CHARACTER.test(character) ? character : "_";
  return result;
}

function byteLength(text: string): number {
  return Buffer.byteLength(text, "utf8");
}
