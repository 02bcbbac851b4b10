// Joins the ES modules that tsc wrote to dist/ into one ES module, dist/bundle.js, which is what
// the package exports (package.json "exports"), with an index source map back to src/ (the
// package ships src/ for it and for the declaration maps). Also writes dist/require.cjs, what a
// CommonJS require() of the package gets: an error that says to use import.
//
// Why: Node 20 loads every ES module on its own (resolve the specifier, stat and read the file,
// compile, link), about half a millisecond each on a small machine, and the SDK is 30 modules:
// that was a tenth of a worker's spawn-to-ready time. One file costs one load.
//
// How: each module becomes a function scope in dependency order; its imports of other modules
// become destructurings of their export objects, its `export` keywords are dropped and its exports
// returned. Imports of packages and Node built-ins stay real imports, once each, at the top. The
// module text tsc emits is regular (one statement per line at column 0 for imports and exports);
// anything this script does not recognise fails the build instead of being guessed at. Import
// cycles fail the build too (a function scope cannot see a later one). After writing, the bundle
// and the modular dist/index.js are both imported and must export the same names and values
// of the same kinds.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const dist = resolve(dirname(fileURLToPath(import.meta.url)), "..", "dist");
const entry = resolve(dist, "index.js");
const output = resolve(dist, "bundle.js");
const PREFIX = "__aspectIpc";

const IMPORT_NAMED = /^import \{([^}]*)\} from "([^"]+)";$/;
const IMPORT_BARE = /^import "([^"]+)";$/;
const EXPORT_FROM = /^export \{([^}]*)\} from "([^"]+)";$/;
const EXPORT_LOCAL_LIST = /^export \{([^}]*)\};$/;
const EXPORT_DECLARATION = /^export ((?:async )?function\*? |class |const |let |var )([A-Za-z_$][\w$]*)/;
const SOURCE_MAP_COMMENT = /^\/\/# sourceMappingURL=.*$/;

/** `a, b as c,` -> [{imported: "a", local: "a"}, {imported: "b", local: "c"}] */
function parseSpecifiers(list, file) {
  return list
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "")
    .map((part) => {
      const match = /^([A-Za-z_$][\w$]*)(?: as ([A-Za-z_$][\w$]*))?$/.exec(part);
      if (match === null) throw new Error(`${file}: cannot bundle the import/export specifier "${part}"`);
      return { imported: match[1], local: match[2] ?? match[1] };
    });
}

function destructure(specifiers, source) {
  const names = specifiers.map(({ imported, local }) => (imported === local ? local : `${imported}: ${local}`));
  return `const { ${names.join(", ")} } = ${source};`;
}

const modules = new Map(); // path -> {id, lines, exports: [{name, expression}], dependencies}
const externals = new Map(); // specifier -> namespace name
const order = [];

function externalNamespace(specifier) {
  if (!externals.has(specifier)) externals.set(specifier, `${PREFIX}X${externals.size}`);
  return externals.get(specifier);
}

/** Loads `path` and everything it imports; appends to `order` after its dependencies. */
function load(path, visiting) {
  if (modules.has(path)) return modules.get(path);
  if (visiting.includes(path)) {
    const cycle = [...visiting.slice(visiting.indexOf(path)), path].map((file) => relative(dist, file));
    throw new Error(`import cycle, which the bundle cannot keep: ${cycle.join(" -> ")}`);
  }
  const file = relative(dist, path);
  const text = readFileSync(path, "utf8");
  if (text.includes(PREFIX)) throw new Error(`${file} uses the name prefix ${PREFIX}, reserved for the bundle`);
  if (/\bimport\s*\(|\bimport\.meta\b/.test(text)) throw new Error(`${file}: dynamic import() and import.meta cannot be bundled`);

  const lines = text.split("\n");
  const exports = [];
  const dependencies = [];
  const resolveLocal = (specifier) => {
    const target = resolve(dirname(path), specifier);
    dependencies.push(target);
    return target;
  };
  const pending = []; // [line index, target path, specifiers, kind]

  lines.forEach((line, index) => {
    if (SOURCE_MAP_COMMENT.test(line)) {
      lines[index] = "";
      return;
    }
    if (!line.startsWith("import") && !line.startsWith("export")) return;
    let match;
    if ((match = IMPORT_NAMED.exec(line)) !== null) {
      const [, list, specifier] = match;
      const specifiers = parseSpecifiers(list, file);
      if (specifier.startsWith(".")) pending.push([index, resolveLocal(specifier), specifiers, "import"]);
      else lines[index] = specifiers.length === 0 ? "" : destructure(specifiers, externalNamespace(specifier));
      if (specifiers.length === 0 && !specifier.startsWith(".")) externalNamespace(specifier);
    } else if ((match = IMPORT_BARE.exec(line)) !== null) {
      const specifier = match[1];
      if (specifier.startsWith(".")) resolveLocal(specifier);
      else externalNamespace(specifier);
      lines[index] = "";
    } else if ((match = EXPORT_FROM.exec(line)) !== null) {
      const [, list, specifier] = match;
      if (!specifier.startsWith(".")) throw new Error(`${file}: re-exporting a package (${specifier}) is not supported`);
      pending.push([index, resolveLocal(specifier), parseSpecifiers(list, file), "reexport"]);
    } else if ((match = EXPORT_LOCAL_LIST.exec(line)) !== null) {
      for (const { imported, local } of parseSpecifiers(match[1], file)) exports.push({ name: local, expression: imported });
      lines[index] = "";
    } else if ((match = EXPORT_DECLARATION.exec(line)) !== null) {
      exports.push({ name: match[2], expression: match[2] });
      lines[index] = line.slice("export ".length);
    } else {
      throw new Error(`${file}:${index + 1}: cannot bundle this statement: ${line}`);
    }
  });

  const module = { id: null, file, lines, exports, path };
  for (const dependency of new Set(dependencies)) load(dependency, [...visiting, path]);
  for (const [index, target, specifiers, kind] of pending) {
    const source = modules.get(target).name;
    if (kind === "import") {
      lines[index] = specifiers.length === 0 ? "" : destructure(specifiers, source);
    } else {
      for (const { imported, local } of specifiers) exports.push({ name: local, expression: `${source}.${imported}` });
      lines[index] = "";
    }
  }
  module.id = order.length;
  module.name = `${PREFIX}M${module.id}`;
  modules.set(path, module);
  order.push(module);
  return module;
}

load(entry, []);
const entryModule = modules.get(entry);

// ---- write the bundle and its index source map ----------------------------------------------------
const out = [
  "// @aspect-ipc/worker, every module of the SDK in one file (made by scripts/bundle.mjs; the sources are in src/).",
];
for (const [specifier, namespace] of externals) out.push(`import * as ${namespace} from ${JSON.stringify(specifier)};`);
const sections = [];
for (const module of order) {
  out.push(`// ---- ${module.file}`);
  out.push(`const ${module.name} = (() => {`);
  const mapPath = `${module.path}.map`;
  const map = JSON.parse(readFileSync(mapPath, "utf8"));
  map.sources = map.sources.map((source) => relative(dist, resolve(dirname(mapPath), map.sourceRoot ?? "", source)));
  delete map.sourceRoot;
  delete map.file;
  sections.push({ offset: { line: out.length, column: 0 }, map });
  out.push(...module.lines);
  const members = module.exports.map(({ name, expression }) => (name === expression ? name : `${name}: ${expression}`));
  out.push(`return { ${members.join(", ")} };`);
  out.push("})();");
}
for (const { name } of entryModule.exports) out.push(`export const ${name} = ${entryModule.name}.${name};`);
out.push("//# sourceMappingURL=bundle.js.map", "");
writeFileSync(output, out.join("\n"));
// An index map (one section per module). The empty top-level "sources" is for Node 20, which
// reads that member of every map before it looks at sections, and drops the map without it.
writeFileSync(`${output}.map`, `${JSON.stringify({ version: 3, file: "bundle.js", sources: [], sections })}\n`);

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

// ---- check: the bundle exports what the modules export ---------------------------------------------
const bundled = await import(pathToFileURL(output).href);
const modular = await import(pathToFileURL(entry).href);
const names = (namespace) => Object.keys(namespace).sort().join(",");
if (names(bundled) !== names(modular)) {
  throw new Error(`bundle exports [${names(bundled)}], the modules export [${names(modular)}]`);
}
for (const name of Object.keys(modular)) {
  const kind = (value) => (typeof value === "function" ? `function ${value.name}` : typeof value);
  if (bundled[name] === undefined || kind(bundled[name]) !== kind(modular[name])) {
    throw new Error(`bundle export ${name} is ${kind(bundled[name])}, the module's is ${kind(modular[name])}`);
  }
}
