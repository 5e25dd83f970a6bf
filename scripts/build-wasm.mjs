// Builds the CPU engine's WebAssembly modules from assembly/ with the
// targets of asconfig.json: SIMD128 (runs everywhere with wasm SIMD) and
// relaxed SIMD (fused multiply-add in every float product), picked at load by
// src/cpu/features.ts; each also without shared memory ("-single"), for
// pages that are not cross-origin isolated. Output: dist/wasm/*.wasm.
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
mkdirSync(join(root, "dist", "wasm"), { recursive: true });
const asc = join(root, "node_modules", "assemblyscript", "bin", "asc.js");

for (const target of ["simd", "relaxed", "simd-single", "relaxed-single"]) {
  const r = spawnSync(process.execPath, [asc, "assembly/index.ts", "--config", "asconfig.json", "--target", target], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`build-wasm: asc failed for target ${target}`);
    process.exit(r.status ?? 1);
  }
}
