#!/usr/bin/env node
// The scheduler benchmark (issue 5): time to first token and decode tokens/s,
// auto against every forced (prefill, decode) engine pair, at prompt lengths
// 16 .. 8192. Needs a build (npm run build).
//
//   node scripts/bench-schedule.mjs [--model DIR | --preset metala-380m] [--devices wasm,webgpu]
//        [--lengths 16,64,256,1024,4096,8192] [--decode-tokens 32] [--budget-ms 120000]
//        [--dtype f32] [--threads N] [--json]
//
// Prints a Markdown table (or JSON with --json) and, per length, auto's total
// time over the best forced path's (target: <= 1.10).
import { parseArgs } from "node:util";

const { values: f } = parseArgs({
  options: {
    model: { type: "string" },
    preset: { type: "string" },
    devices: { type: "string", default: "wasm,webgpu" },
    lengths: { type: "string", default: "16,64,256,1024,4096,8192" },
    "decode-tokens": { type: "string", default: "32" },
    "budget-ms": { type: "string", default: "120000" },
    dtype: { type: "string", default: "f32" },
    threads: { type: "string" },
    json: { type: "boolean" },
  },
});

const { benchSchedule, autoVersusBest } = await import("../dist/runtime/bench-schedule.js");
const { createEngineOfKind } = await import("../dist/runtime/engines.js");
const source = f.model
  ? await (await import("../dist/model/checkpoint.js")).openCheckpoint(f.model)
  : (await import("../dist/model/preset.js")).presetSource(f.preset ?? "metala-380m");

const engines = [];
for (const kind of f.devices.split(",")) {
  try {
    engines.push(await createEngineOfKind(kind, source, { dtype: f.dtype, threads: f.threads ? Number(f.threads) : undefined }));
  } catch (e) {
    console.error(`bench-schedule: ${kind} not available: ${e.message}`);
  }
}
if (engines.length === 0) process.exit(1);
const log = (s) => !f.json && console.log(s);
log(`model: ${source.label}; engines: ${engines.map((e) => `${e.kind} (${e.description})`).join(", ")}`);

const { costs, rows } = await benchSchedule(source, engines, {
  lengths: f.lengths.split(",").map(Number),
  decodeTokens: Number(f["decode-tokens"]),
  budgetMs: Number(f["budget-ms"]),
  dtype: f.dtype,
  onRow: (r) =>
    !f.json &&
    console.error(`  ${r.path} T=${r.promptTokens}: ttft ${r.timeToFirstTokenMs.toFixed(1)} ms, decode ${r.decodeTokensPerS.toFixed(1)} tok/s (${r.prefillEngine} / ${r.decodeEngine})`),
});
const verdict = autoVersusBest(rows);
if (f.json) {
  console.log(JSON.stringify({ model: source.label, engines: engines.map((e) => e.description), costs, rows, auto_vs_best: verdict }));
} else {
  log("\n| path | prompt tokens | ran on (prefill / decode) | time to first token (ms) | decode tok/s | total (ms) |");
  log("|---|---:|---|---:|---:|---:|");
  for (const r of rows)
    log(`| ${r.path} | ${r.promptTokens} | ${r.prefillEngine} / ${r.decodeEngine} | ${r.timeToFirstTokenMs.toFixed(1)} | ${r.decodeTokensPerS.toFixed(1)} | ${r.totalMs.toFixed(0)} |`);
  log("\n| prompt tokens | auto total (ms) | best forced | best total (ms) | auto / best |");
  log("|---:|---:|---|---:|---:|");
  for (const v of verdict) log(`| ${v.promptTokens} | ${v.autoMs.toFixed(0)} | ${v.bestPath} | ${v.bestMs.toFixed(0)} | ${v.ratio.toFixed(2)} |`);
}
for (const e of engines) await e.dispose();
await source.close();
process.exit(0);
