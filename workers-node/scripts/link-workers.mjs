// Makes the compiled workers runnable as `node <dir>/build/worker.js` from anywhere, without an
// npm install in their directories. For each build directory it writes:
//   build/package.json                       {"type": "module"}: the compiled worker is ESM
//   build/node_modules/@aspect-ipc/worker -> workers-node (a symlink, as `npm link` would make)
// so that the worker's `import ... from "@aspect-ipc/worker"` resolves to this package exactly as
// it does for users, and the SDK's own dependencies resolve from workers-node/node_modules.
import { lstatSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const sdk = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const buildDirectories = [
  resolve(sdk, "../examples/dual-channel/build"),
  resolve(sdk, "../integration-tests/workers/node/build"),
];

for (const build of buildDirectories) {
  mkdirSync(build, { recursive: true });
  writeFileSync(join(build, "package.json"), `${JSON.stringify({ private: true, type: "module" }, null, 2)}\n`);
  const scope = join(build, "node_modules", "@aspect-ipc");
  const link = join(scope, "worker");
  mkdirSync(scope, { recursive: true });
  try {
    lstatSync(link);
    rmSync(link, { recursive: true, force: true });
  } catch {
    // Nothing there yet.
  }
  if (process.platform === "win32") symlinkSync(sdk, link, "junction");
  else symlinkSync(relative(scope, sdk), link);
}
