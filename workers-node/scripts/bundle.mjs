// Writes what the package exports (package.json "exports") from the ES modules tsc wrote to dist/:
// dist/bundle.js, every module of the SDK in one ES module, made by esbuild from dist/index.js,
// with a source map back to src/ (esbuild follows tsc's per-module maps; the package ships src/);
// dist/require.cjs, what a CommonJS require() of the package gets: an error that says to use
// import; and dist/esm-only.d.mts, the types TypeScript gives that require(): none, so that it
// fails to compile too. scripts/check-bundle.mjs then checks that the bundle exports what
// dist/index.js exports.
//
// Why one file: Node 20 loads every ES module on its own (resolve the specifier, stat and read the
// file, compile, link), about half a millisecond each on a small machine, and the SDK is 30
// modules: that was a tenth of a worker's spawn-to-ready time. One file costs one load.
//
// Why from tsc's output and not from src/: the bundle is then the very code the per-module tests
// run, compiled once by the compiler that type-checks it.
import { writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const dist = resolve(dirname(fileURLToPath(import.meta.url)), "..", "dist");

const result = await build({
  entryPoints: [resolve(dist, "index.js")],
  outfile: resolve(dist, "bundle.js"),
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // Packages stay real imports (the SDK has no runtime dependencies; a devDependency imported by
  // mistake then fails loudly in the packaging test instead of being copied in).
  packages: "external",
  // Class names are what errors report (errors.ts: this.name = new.target.name): never renamed.
  keepNames: true,
  // The package ships src/, which the map points at: the sources need not be in it too.
  sourcemap: "linked",
  sourcesContent: false,
  banner: { js: "// @aspect-ipc/worker, every module of the SDK in one file (made by scripts/bundle.mjs from dist/; the sources are in src/)." },
  logLevel: "warning",
  write: false,
});
// esbuild warns of what still bundles but is likely wrong (an import of a name no module exports,
// a direct eval...): printed above, and nothing is written.
if (result.warnings.length > 0) {
  console.error(`scripts/bundle.mjs: esbuild warned ${result.warnings.length} time(s) above; fix that, then build again`);
  process.exit(1);
}
for (const file of result.outputFiles) writeFileSync(file.path, file.contents);

// ---- the "require" entry point: ESM only, said plainly ---------------------------------------------
// Without it, require() fails with ERR_PACKAGE_PATH_NOT_EXPORTED (Node 20) or loads the ES module
// (newer Node, where it can), neither of which tells a CommonJS user what to do.
const esmOnly =
  "aspect-ipc is ESM only: use import { Worker } from \"@aspect-ipc/worker\" in an ES module " +
  "(a .mjs or .mts file, or \"type\": \"module\" in package.json), " +
  "or await import(\"@aspect-ipc/worker\") from CommonJS; require() cannot load it";
writeFileSync(
  resolve(dist, "require.cjs"),
  [
    "// What require(\"@aspect-ipc/worker\") loads (package.json \"exports\"): the package is an ES module.",
    `const error = new Error(${JSON.stringify(esmOnly)});`,
    'error.code = "ERR_REQUIRE_ESM";',
    "throw error;",
    "",
  ].join("\n"),
);

// ---- what TypeScript sees for that entry point: an ES module that exports nothing ----------------
// package.json gives the "require" condition these types, so that a CommonJS file's
// `import { Worker } from "@aspect-ipc/worker"` (which TypeScript compiles to require()) fails to
// type-check instead of failing at run time. Under --module node16/node18 it is TS1479 (a CommonJS
// file cannot require() an ES module: this file is one, .d.mts). Under nodenext and node20, where
// TypeScript lets require() load an ES module (as Node >= 20.19 can, which this package refuses on
// purpose: dist/require.cjs throws), it is TS2305 "has no exported member 'Worker'", as nothing is
// exported here. `await import(...)` resolves with the "import" condition and is unaffected.
writeFileSync(
  resolve(dist, "esm-only.d.mts"),
  [
    "// What TypeScript sees for require(\"@aspect-ipc/worker\") (package.json \"exports\", \"require\"): nothing.",
    `// ${esmOnly}.`,
    "// A CommonJS file's `import { Worker } from \"@aspect-ipc/worker\"` compiles to require(), which throws.",
    "export {};",
    "",
  ].join("\n"),
);
