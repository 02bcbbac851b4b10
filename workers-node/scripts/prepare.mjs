// npm's "prepare" script: builds what the package ships (dist/ by tsc, then dist/bundle.js,
// dist/require.cjs and dist/esm-only.d.mts by scripts/bundle.mjs, checked by
// scripts/check-bundle.mjs), so that a fresh clone, which has no dist/, installs.
//
// npm runs "prepare" on `npm install` / `npm ci` here, before `npm pack` and `npm publish`, for a
// git dependency (after installing this package's devDependencies) and for a directory dependency
// (`npm install ../path/to/workers-node`): that last one links this directory WITHOUT installing
// its devDependencies. So when the compiler or the bundler is missing, this installs them first
// (from package-lock.json, with lifecycle scripts off so that this script does not run again;
// esbuild needs none of its own: its binary comes in an optional dependency, @esbuild/<platform>).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const sdk = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const tsc = join(sdk, "node_modules", "typescript", "bin", "tsc");
const esbuild = join(sdk, "node_modules", "esbuild", "package.json");

function run(command, args) {
  const result = spawnSync(command, args, { cwd: sdk, stdio: "inherit" });
  if (result.error !== undefined || result.status !== 0) {
    const why = result.error?.message ?? (result.signal !== null ? `signal ${result.signal}` : `exit code ${result.status}`);
    console.error(`@aspect-ipc/worker prepare: \`${command} ${args.join(" ")}\` in ${sdk} failed (${why})`);
    process.exit(result.status || 1);
  }
}

if (!existsSync(tsc) || !existsSync(esbuild)) {
  console.error(`@aspect-ipc/worker prepare: installing the build tools (devDependencies) in ${sdk}`);
  // The npm that runs this script, when it is npm; otherwise the one on PATH.
  const npmCli = process.env.npm_execpath;
  const npm = npmCli !== undefined && /npm-cli\.c?js$/.test(npmCli) ? [process.execPath, npmCli] : ["npm"];
  const install = existsSync(join(sdk, "package-lock.json")) ? "ci" : "install";
  run(npm[0], [...npm.slice(1), install, "--ignore-scripts", "--include=dev", "--no-audit", "--no-fund"]);
}
run(process.execPath, [tsc, "-p", "tsconfig.json"]);
run(process.execPath, [join(sdk, "scripts", "bundle.mjs")]);
run(process.execPath, [join(sdk, "scripts", "check-bundle.mjs")]);
