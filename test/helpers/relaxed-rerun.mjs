// Runs a test file again in a child Node with relaxed SIMD enabled, so that
// the relaxed build (what the CLI runs where the host has it) passes the
// same tests as the SIMD128 build plain Node 20 picks. The child sees
// METALA_TEST_SAY_BUILD=1, for the file to print which build it ran.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as assert from "uvu/assert";

/** Asserts that the file at `fileUrl` passes under --experimental-wasm-relaxed-simd and printed `said`; a Node without the flag passes. */
export function passesWithRelaxedSimd(fileUrl, said) {
  // in the child itself, nothing: were it to run the SIMD128 build, `said` fails the parent, not a rerun of a rerun
  if (process.env.METALA_TEST_SAY_BUILD) return;
  // the child runs the relaxed build even where the parent was held to SIMD128 (METALA_RELAXED_SIMD=0)
  const { METALA_RELAXED_SIMD: _, ...env } = process.env;
  const r = spawnSync(process.execPath, ["--experimental-wasm-relaxed-simd", fileURLToPath(fileUrl)], { encoding: "utf8", timeout: 300_000, env: { ...env, METALA_TEST_SAY_BUILD: "1" } });
  if (r.status !== 0 && /relaxed/.test(r.stderr) && /bad option/.test(r.stderr)) return; // a Node without the flag
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, said);
}
