#!/usr/bin/env node
// Runs every test/*.test.mjs in its own Node process (engines hold worker
// pools and GPU devices; a fresh process per file keeps files independent),
// one after another (CI has 2 cores and the engines use both), and ends with
// the line CI reads: "N passed, N failed".
//   node scripts/test.mjs [substring ...]   run only files whose name contains one of them
import { spawn } from "node:child_process";
import { readdirSync, existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const filters = process.argv.slice(2);
const files = readdirSync(join(root, "test"))
  .filter((f) => f.endsWith(".test.mjs"))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();

// Without a GPU, WebGPU tests run on SwiftShader (Debian chromium-common).
const env = { ...process.env, FORCE_COLOR: "0" };
const swiftshader = "/usr/lib/chromium/vk_swiftshader_icd.json";
if (!env.VK_ICD_FILENAMES && !env.VK_DRIVER_FILES && existsSync(swiftshader)) env.VK_ICD_FILENAMES = swiftshader;

const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, "");
let passed = 0, failed = 0, skipped = 0;
const failedFiles = [];
const started = Date.now();
for (const f of files) {
  const t0 = Date.now();
  const out = await new Promise((resolve) => {
    const child = spawn(process.execPath, [join("test", f)], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    child.stdout.on("data", (d) => { text += d; process.stdout.write(d); });
    child.stderr.on("data", (d) => { text += d; process.stderr.write(d); });
    child.on("close", (code) => resolve({ code, text: strip(text) }));
  });
  const total = Number(/Total:\s+(\d+)/.exec(out.text)?.[1] ?? NaN);
  const ok = Number(/Passed:\s+(\d+)/.exec(out.text)?.[1] ?? NaN);
  const skip = Number(/Skipped:\s+(\d+)/.exec(out.text)?.[1] ?? 0);
  if (!Number.isFinite(total) || !Number.isFinite(ok)) {
    failed += 1; // crashed before uvu could report: count the file as one failure
    failedFiles.push(f);
  } else {
    passed += ok;
    skipped += skip;
    const bad = total - ok - skip;
    failed += bad;
    if (bad > 0 || out.code !== 0) failedFiles.push(f);
    if (bad === 0 && out.code !== 0) failed += 1;
  }
  console.log(`# ${f}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
console.log(`\n# ${files.length} files in ${((Date.now() - started) / 1000).toFixed(0)} s${failedFiles.length ? "; failing: " + failedFiles.join(", ") : ""}`);
console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
process.exit(failed > 0 ? 1 : 0);
