// The runtime over the real engines of this build (wasm; WebGPU where an
// adapter exists, SwiftShader in CI): every forced path and the hybrid
// GPU-prefill/CPU-decode path give the reference engine's greedy tokens,
// and a GPU->CPU hand-off after prefills of 1..200 tokens gives the PyTorch
// fixture's logits.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { gpuOrSkip } from "./gpu-support.mjs";
import { loadFixture, logitsError } from "./helpers/fixtures.mjs";
import { modelWith, openFixture } from "./helpers/runtime-model.mjs";
import { argmax } from "../dist/generate/sampling.js";
import { StateSequence } from "../dist/runtime/session.js";

const fx = await openFixture("tiny-f32");
const expected = loadFixture("tiny-f32");
const long = expected.cases.find((c) => c.tokens.length === 300);
const prompt = long.tokens.slice(0, 70);
const GEN = { maxNewTokens: 8, ignoreEos: true };

const engines = { reference: fx.reference };
let softwareGpu = false;
{
  const { createWasmEngine } = await import("../dist/cpu/engine.js");
  engines.wasm = await createWasmEngine(fx.source, { threads: 1 });
}
const gpu = await gpuOrSkip();
if (gpu) {
  const { createWebGpuEngine } = await import("../dist/gpu/engine.js");
  const { isSoftwareAdapter } = await import("../dist/runtime/devices.js");
  engines.webgpu = await createWebGpuEngine(fx.source, { context: gpu }); // our device: the last test destroys it
  softwareGpu = isSoftwareAdapter(gpu.info);
}

/** Hands off after a prefill of each length n, returns the worst relative logits error (before and after). */
async function handoffSweep(from, to, lengths) {
  const model = modelWith(fx, [from, to], { policy: { prefill: from.kind, decode: to.kind } });
  let worst = 0;
  let worstAt = 0;
  for (const n of lengths) {
    const s = new StateSequence({ config: fx.source.config, fingerprint: fx.fingerprint, scheduler: model.scheduler });
    s.append(long.tokens.slice(0, n));
    const a = await s.next();
    s.append([long.tokens[n]]);
    const b = await s.next();
    assert.is(b.report.engine, to.kind);
    if (n > 1) assert.is(a.report.engine, from.kind);
    const err = logitsError([a.logits, b.logits], [long.logits[n - 1], long.logits[n]]);
    if (err > worst) [worst, worstAt] = [err, n];
    s.dispose();
  }
  console.log(`  hand-off ${from.kind} -> ${to.kind} at ${lengths.length} prefill lengths: worst relative logits error ${worst.toExponential(2)} (length ${worstAt})`);
  return { worst, worstAt };
}

const ALL = Array.from({ length: 200 }, (_, i) => i + 1);
// SwiftShader needs ~2 s per GPU prefill: there, the chunk edges only
const EDGES = [1, 2, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200];

const want = (await modelWith(fx, [fx.reference]).generateText(prompt, GEN)).tokens;

test("reference greedy is the PyTorch argmax at the first step", () => {
  assert.is(want[0], argmax(long.logits[69]));
});

test("every forced (prefill, decode) pair of real engines gives the reference's greedy tokens", async () => {
  const kinds = Object.keys(engines);
  for (const prefill of kinds)
    for (const decode of kinds) {
      const model = modelWith(fx, Object.values(engines), { policy: { prefill, decode } });
      const r = await model.generateText(prompt, GEN);
      assert.equal(r.tokens, want, `prefill ${prefill}, decode ${decode}`);
      assert.is(r.stats.prefillEngine, prefill);
      assert.equal(r.stats.decodeEngines, [decode]);
    }
});

test("sampling with a seed gives the same tokens on every engine", async () => {
  const opts = { maxNewTokens: 24, ignoreEos: true, temperature: 0.9, topP: 0.95, topK: 100, seed: 1234 };
  const ref = (await modelWith(fx, [fx.reference]).generateText(prompt, opts)).tokens;
  assert.is.not(ref.join(), want.join(), "sampling differs from greedy");
  for (const kind of Object.keys(engines)) {
    const r = await modelWith(fx, [engines[kind]]).generateText(prompt, opts);
    assert.equal(r.tokens, ref, kind);
  }
});

test("CPU hand-off after every prefill length 1..200 gives the PyTorch logits (wasm -> reference)", async () => {
  const { worst, worstAt } = await handoffSweep(engines.wasm, engines.reference, ALL);
  assert.ok(worst < 1e-4, `worst ${worst} at ${worstAt}`);
});

test("GPU->CPU hand-off after prefills of 1..200 tokens gives the PyTorch logits (webgpu -> wasm)", async () => {
  if (!engines.webgpu) return console.log("  SKIP: no WebGPU adapter");
  const { worst, worstAt } = await handoffSweep(engines.webgpu, engines.wasm, softwareGpu ? EDGES : ALL);
  assert.ok(worst < 1e-4, `worst ${worst} at ${worstAt}`);
});

test("a real GPU device destroyed mid-decode: the CPU continues, same tokens, one warning", async () => {
  if (!engines.webgpu) return console.log("  SKIP: no WebGPU adapter");
  const model = modelWith(fx, [engines.webgpu, engines.wasm], { policy: { prefill: "webgpu", decode: "webgpu" } });
  const g = model.createSession().generate(prompt, GEN);
  const got = [];
  for await (const p of g) {
    got.push(p.token);
    if (got.length === 3) gpu.device.destroy();
  }
  assert.equal(got, want);
  assert.equal(g.result.stats.decodeEngines, ["webgpu", "wasm"]);
  assert.is(model.warnings.length, 1);
  assert.match(model.warnings[0], /webgpu engine failed/);
});

test.run();
