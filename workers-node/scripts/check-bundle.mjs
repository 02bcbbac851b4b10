// Fails the build when dist/bundle.js (what the package exports) and dist/index.js (tsc's output of
// src/index.ts) do not export the same names, or a name is not the same kind of value in both (a
// function or class of the same name, an object, a number...). Run after scripts/bundle.mjs.
import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const dist = resolve(dirname(fileURLToPath(import.meta.url)), "..", "dist");
const bundled = await import(pathToFileURL(resolve(dist, "bundle.js")).href);
const modular = await import(pathToFileURL(resolve(dist, "index.js")).href);

const kind = (value) => (typeof value === "function" ? `function ${value.name}` : typeof value);
const problems = [];
for (const name of new Set([...Object.keys(bundled), ...Object.keys(modular)])) {
  if (!(name in modular)) problems.push(`${name} is exported by the bundle only`);
  else if (!(name in bundled)) problems.push(`${name} is missing from the bundle`);
  else if (kind(bundled[name]) !== kind(modular[name])) {
    problems.push(`${name} is ${kind(bundled[name])} in the bundle, ${kind(modular[name])} in index.js`);
  }
}
if (problems.length > 0) {
  console.error(
    `dist/bundle.js does not export what dist/index.js exports:\n  ${problems.join("\n  ")}\n` +
      "rebuild (npm run build); if it persists, see the esbuild options in scripts/bundle.mjs",
  );
  process.exit(1);
}
