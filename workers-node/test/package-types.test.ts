/**
 * The package as a TypeScript user's project sees it: the small projects in
 * test/fixtures/consumers (see the README there), compiled with this package's own `tsc` (the
 * devDependency: no network), resolve `@aspect-ipc/worker` through package.json's `exports`, from a
 * temporary directory whose node_modules links to this package.
 *
 * - ESM under nodenext, node16 and bundler resolution compiles, with exactOptionalPropertyTypes
 *   and optional values passed on to every option type, and runs;
 * - a CommonJS file's static import (compiled to require(), which throws) does not compile:
 *   TS2305 under nodenext (TypeScript allows require() of ES modules there: only the `require`
 *   condition's types, which export nothing, stop it), TS1479 under node16;
 * - a CommonJS file's `await import()` compiles and runs;
 * - require() at run time still throws the package's own message.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { tempDirectory } from "./helpers/parent.js";

const run = promisify(execFile);
const SDK = fileURLToPath(new URL("../../", import.meta.url));
const TSC = join(SDK, "node_modules", "typescript", "bin", "tsc");
const CONSUMERS = join(SDK, "test", "fixtures", "consumers");
/** What require() of the package throws (scripts/bundle.mjs): unchanged by the types. */
const ESM_ONLY =
  'aspect-ipc is ESM only: use import { Worker } from "@aspect-ipc/worker" in an ES module ' +
  '(a .mjs or .mts file, or "type": "module" in package.json), ' +
  'or await import("@aspect-ipc/worker") from CommonJS; require() cannot load it';

/** The consumer projects copied into a temporary directory where `@aspect-ipc/worker` is this package. */
function consumers(t: { after(fn: () => void): void }): string {
  const directory = tempDirectory();
  t.after(() => directory.remove());
  const root = directory.path;
  cpSync(CONSUMERS, root, { recursive: true });
  mkdirSync(join(root, "node_modules", "@aspect-ipc"), { recursive: true });
  symlinkSync(SDK, join(root, "node_modules", "@aspect-ipc", "worker"), "dir");
  // @types/node, as a user's project has it (the SDK's devDependency).
  symlinkSync(join(SDK, "node_modules", "@types"), join(root, "node_modules", "@types"), "dir");
  return root;
}

/**
 * Builds `projects` in one `tsc -b` (the library and @types/node are read once for all): the
 * errors of each (paths relative to `cwd`), by its tsconfig's path. tsc writes each project's
 * output, with errors or not.
 */
async function tscBuild(cwd: string, projects: string[]): Promise<Map<string, string[]>> {
  let output: string;
  try {
    const { stdout, stderr } = await run(process.execPath, [TSC, "-b", "--verbose", "--pretty", "false", ...projects], { cwd, timeout: 300_000 });
    output = stdout + stderr;
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof failed.code !== "number") throw error;
    output = `${failed.stdout ?? ""}${failed.stderr ?? ""}`;
  }
  const errors = new Map<string, string[]>(projects.map((project) => [project, []]));
  let current: string[] | undefined;
  for (const line of output.split("\n")) {
    const building = /Building project '(.+)'\.\.\.$/.exec(line);
    if (building !== null) {
      current = errors.get(building[1] as string);
      assert.ok(current !== undefined, `tsc built a project not asked for: ${line}\n${output}`);
    } else if (/\): error TS\d+: /.test(line)) {
      assert.ok(current !== undefined, `an error before any project:\n${output}`);
      current.push(line);
    }
  }
  return errors;
}

/** Runs a compiled file with node: exit code, stdout and stderr. */
async function node(file: string, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [file], { cwd, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof failed.code !== "number") throw error;
    return { code: failed.code, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

/** The TSnnnn codes of some tsc error lines, in order. */
function codes(lines: string[]): string[] {
  return lines.map((line) => /error (TS\d+):/.exec(line)?.[1] ?? line);
}

test("TypeScript projects against the package: ESM compiles and runs, a CommonJS static import does not compile", async (t) => {
  const root = consumers(t);
  const esm = join(root, "esm");
  const cjs = join(root, "cjs");
  const project = (directory: string, name: string): string => join(directory, `tsconfig.${name}.json`);
  const errors = await tscBuild(root, [
    ...["nodenext", "node16", "bundler"].map((name) => project(esm, name)),
    ...["require-nodenext", "require-node16", "dynamic"].map((name) => project(cjs, name)),
  ]);
  const errorsOf = (directory: string, name: string): string[] => errors.get(project(directory, name)) ?? [];

  const expected = `function 5 /tmp/ns-worker-1.sock\n`;
  for (const name of ["nodenext", "node16", "bundler"]) {
    assert.deepEqual(errorsOf(esm, name), [], `ESM, ${name}: compiles`);
    const ran = await node(join(esm, `out-${name}`, "main.js"), esm);
    assert.deepEqual(ran, { code: 0, stdout: expected, stderr: "" }, `ESM, ${name}: runs`);
  }

  // The static import in a CommonJS file must not compile.
  assert.deepEqual(errorsOf(cjs, "require-nodenext"), [`cjs/require.cts(2,10): error TS2305: Module '"@aspect-ipc/worker"' has no exported member 'Worker'.`]);
  const node16Errors = errorsOf(cjs, "require-node16");
  assert.deepEqual(codes(node16Errors), ["TS2305", "TS1479"], node16Errors.join("\n"));
  assert.match(node16Errors[1] ?? "", /the referenced file is an ECMAScript module and cannot be imported with 'require'/);

  // What tsc emitted for it anyway (no noEmitOnError) fails at run time, with the package's message.
  const required = await node(join(cjs, "out-require-nodenext", "require.cjs"), cjs);
  assert.notEqual(required.code, 0);
  assert.ok(required.stderr.includes(`Error: ${ESM_ONLY}\n`), required.stderr);
  assert.ok(required.stderr.includes("code: 'ERR_REQUIRE_ESM'"), required.stderr);

  assert.deepEqual(errorsOf(cjs, "dynamic"), [], "CommonJS, await import(): compiles");
  const imported = await node(join(cjs, "out-dynamic", "dynamic.cjs"), cjs);
  assert.deepEqual(imported, { code: 0, stdout: "function /tmp/ns-worker-1.sock\n", stderr: "" });
});
