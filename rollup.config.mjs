// Bundles of the compiled package (run after tsc: it reads dist/, not src/):
//   dist/bundle/node/     Node ESM: index.js, worker.js (the worker runtime's
//                         client); dependencies stay external
//   dist/bundle/browser/  browser ESM, self-contained: index.js (everything),
//                         model-worker.js (the Web Worker entry)
// Files the code opens by `new URL(..., import.meta.url)` (worker modules,
// the .wasm kernels, the .wgsl shaders) are emitted beside the bundle and the
// URLs rewritten to plain `new URL("./name", import.meta.url)` literals,
// which every bundler (webpack 5, Vite, esbuild, Parcel) follows on its own,
// so a user of the bundle configures nothing.
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { nodeResolve } from "@rollup/plugin-node-resolve";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");

/** `new URL("./x", import.meta.url)`: a literal relative path. */
const LITERAL_URL = /new URL\(\s*(["'])(\.{1,2}\/[^"'`$]+)\1\s*,\s*import\.meta\.url\s*\)/g;
/** `new URL(`../dir/${expr}suffix`, import.meta.url)`: one file of a folder, picked at run time. */
const TEMPLATE_URL = /new URL\(\s*`(\.{1,2}\/[^`$]*\/)([^`$/]*)\$\{([^}]+)\}([^`$/]*)`\s*,\s*import\.meta\.url\s*\)/g;
/** The runtime's engine loader imports engine modules by variable path (runtime/devices.ts). */
const ENGINE_LOADER = /export async function importEngineModule\(/;
const VARIABLE_IMPORT = /\bimport\((\w+)\)/g;
const ENGINE_PATH = /["']\.\.\/(?:cpu|gpu|reference)\/[\w.-]+\.js["']/g;

/** Every engine module path named in dist/runtime (relative to it) that the build has. */
function engineModules() {
  const dir = join(dist, "runtime");
  const found = new Set();
  for (const f of readdirSync(dir).filter((n) => n.endsWith(".js")))
    for (const m of readFileSync(join(dir, f), "utf8").matchAll(ENGINE_PATH)) found.add(m[0].slice(1, -1));
  return [...found].filter((p) => existsSync(join(dir, p))).sort();
}

/**
 * js-tiktoken imports the CommonJS package base64-js for one function,
 * toByteArray; browsers have atob, so an ES module of a few lines stands in
 * (rollup reads no CommonJS without a plugin this package does not need).
 */
const BASE64_ID = "\0base64-js";
const BASE64_MODULE = `
export function toByteArray(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
export default { toByteArray };
`;

function emitName(path) {
  return `${basename(dirname(path))}-${basename(path, ".js")}`;
}

function assetsPlugin({ browser }) {
  return {
    name: "metala-assets",
    resolveId(id) {
      // Node built-ins are only reached on Node code paths; a browser bundle gets an empty module.
      if (browser && id.startsWith("node:")) return `\0node-stub:${id}`;
      if (browser && id === "base64-js") return BASE64_ID;
      return null;
    },
    load(id) {
      if (id.startsWith("\0node-stub:")) return { code: "export default {};", syntheticNamedExports: true };
      if (id === BASE64_ID) return BASE64_MODULE;
      return null;
    },
    transform(code, id) {
      if (!id.startsWith(dist)) return null;
      const here = dirname(id);
      let out = code;
      const emit = (path) => {
        if (!existsSync(path)) this.error(`${relative(root, id)}: new URL() names ${relative(root, path)}, which does not exist (build it first)`);
        if (path.endsWith(".js")) return this.emitFile({ type: "chunk", id: path, name: emitName(path) });
        return this.emitFile({ type: "asset", name: basename(path), source: readFileSync(path) });
      };
      out = out.replace(LITERAL_URL, (_, _q, rel) => `new URL(import.meta.ROLLUP_FILE_URL_${emit(resolve(here, rel))}, import.meta.url)`);
      out = out.replace(TEMPLATE_URL, (_, dirPart, prefix, expr, suffix) => {
        const dir = resolve(here, dirPart);
        if (!existsSync(dir)) this.error(`${relative(root, id)}: new URL() reads from ${relative(root, dir)}, which does not exist (build it first)`);
        const files = readdirSync(dir).filter((f) => f.startsWith(prefix) && f.endsWith(suffix) && f.length > prefix.length + suffix.length);
        if (files.length === 0) this.error(`${relative(root, id)}: no files match ${relative(root, dir)}/${prefix}*${suffix}`);
        const table = files.map((f) => `${JSON.stringify(f)}: () => new URL(import.meta.ROLLUP_FILE_URL_${emit(join(dir, f))}, import.meta.url)`);
        const key = `${JSON.stringify(prefix)} + (${expr}) + ${JSON.stringify(suffix)}`;
        const missing = `() => { throw new Error(${JSON.stringify(dirPart)} + ${key} + " is not in this bundle"); }`;
        return `(({${table.join(", ")}})[${key}] ?? (${missing}))()`;
      });
      // A URL this plugin does not understand would point into the void once bundled: stop the build instead.
      const leftover = /new URL\(\s*`[^`]*`\s*,\s*import\.meta\.url/.exec(out);
      if (leftover) this.error(`cannot bundle ${leftover[0]}...: name the file literally, or as \`dir/\${name}\` of one folder`);
      if (ENGINE_LOADER.test(out)) {
        let replaced = 0;
        out = out.replace(VARIABLE_IMPORT, (_, v) => (replaced++, `__metalaEngineImport(${v})`));
        if (replaced !== 1) this.error(`${relative(root, id)}: expected one import(variable) in importEngineModule, found ${replaced}`);
        const table = engineModules().map((p) => `${JSON.stringify(p)}: () => import(${JSON.stringify(p)})`);
        out += `
const __metalaEngineModules = {${table.join(", ")}};
function __metalaEngineImport(path) {
  const load = __metalaEngineModules[path];
  if (load) return load();
  return Promise.reject(Object.assign(new Error(\`\${path} is not in this bundle\`), { code: "ERR_MODULE_NOT_FOUND" }));
}
`;
      }
      return out === code ? null : { code: out, map: null };
    },
    resolveFileUrl({ relativePath }) {
      return JSON.stringify(relativePath.startsWith(".") ? relativePath : `./${relativePath}`);
    },
  };
}

/** Empties an output folder first, so no chunk of an earlier build lingers beside the new ones. */
function clean(dir) {
  return { name: "metala-clean", buildStart: () => rmSync(dir, { recursive: true, force: true }) };
}

const isBare = (id) => !id.startsWith(".") && !id.startsWith("/") && !id.startsWith("\0");

/** Rollup's warnings, an unresolved import fails the build (a browser bundle must be self-contained). */
function onwarn(warning, warn) {
  if (warning.code === "UNRESOLVED_IMPORT") throw new Error(warning.message);
  warn(warning);
}

export default [
  {
    input: { index: join(dist, "index.js"), worker: join(dist, "worker/index.js") },
    external: isBare,
    plugins: [clean(join(dist, "bundle/node")), assetsPlugin({ browser: false })],
    onwarn,
    output: { dir: join(dist, "bundle/node"), format: "es", entryFileNames: "[name].js", chunkFileNames: "[name]-[hash].js", assetFileNames: "assets/[name]-[hash][extname]" },
  },
  {
    input: { index: join(dist, "browser/index.js"), "model-worker": join(dist, "worker/entry.js") },
    plugins: [clean(join(dist, "bundle/browser")), assetsPlugin({ browser: true }), nodeResolve({ browser: true, exportConditions: ["browser", "import", "default"] })],
    onwarn,
    output: { dir: join(dist, "bundle/browser"), format: "es", entryFileNames: "[name].js", chunkFileNames: "[name]-[hash].js", assetFileNames: "assets/[name]-[hash][extname]" },
  },
];
