// q8 / q4 weights on the GPU (dequantized as the GEMM tiles load): the
// quantizer's error bound, and whole models against the reference engine
// given the same dequantized projection matrices.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { gpuOrSkip, randomArray } from "./gpu-support.mjs";
import { loadFixture, logitsError, openFixtureModel } from "./helpers/fixtures.mjs";

const { quantize, dequantize } = await import("../dist/gpu/quantize.js");
const { createWebGpuEngine } = await import("../dist/gpu/engine.js");
const { createReferenceEngine } = await import("../dist/reference/engine.js");
const { randomModel } = await import("./helpers/random-model.mjs");

for (const [type, qmax] of [["q8", 127], ["q4", 7]])
  test(`${type} quantizer: every value within half a step of its group's scale`, () => {
    const rows = 5, K = 72; // the last group of each row is partial
    const w = randomArray(rows * K, 17, 2);
    w[3] = 0; // a zero and a group's maximum are exact
    const deq = dequantize(quantize(w, rows, K, type), rows, K, type);
    for (let r = 0; r < rows; r++)
      for (let g = 0; g * 32 < K; g++) {
        const lo = r * K + g * 32, hi = r * K + Math.min(K, g * 32 + 32);
        let amax = 0;
        for (let i = lo; i < hi; i++) amax = Math.max(amax, Math.abs(w[i]));
        for (let i = lo; i < hi; i++) assert.ok(Math.abs(deq[i] - w[i]) <= (amax / qmax) * 0.5 * (1 + 1e-5), `${type} [${r}, ${i - r * K}]: ${w[i]} -> ${deq[i]}`);
      }
    assert.is(deq[3], 0);
  });

// The matrices the engine quantizes (rows of 32-element groups along K, so
// fusing rows of several tensors does not change any group).
const PROJECTION = /(q_proj|k_gate|v_proj|g_proj|out_proj|l1|l2|l3)\.weight$/;

function dequantized(source, type) {
  return new Proxy(source, {
    get(target, prop) {
      if (prop === "read")
        return async (name, dest) => {
          const a = await target.read(name, dest);
          if (!PROJECTION.test(name)) return a;
          const [rows, K] = target.shape(name);
          a.set(dequantize(quantize(a, rows, K, type), rows, K, type));
          return a;
        };
      const v = target[prop];
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

for (const type of ["q8", "q4"])
  test(`tiny-f32 with ${type} weights: webgpu matches the reference given the same dequantized weights`, async () => {
    const ctx = await gpuOrSkip();
    if (!ctx) return;
    const fx = loadFixture("tiny-f32");
    const source = await openFixtureModel(fx);
    const engine = await createWebGpuEngine(source, { context: ctx, dtype: type });
    assert.is(engine.dtype, type);
    const reference = await createReferenceEngine(dequantized(source, type));
    for (const c of fx.cases.filter((x) => [1, 65].includes(x.tokens.length))) {
      const s = engine.createSession();
      const got = await s.prefill(c.tokens, "all");
      const want = reference.createSession().prefillF64(c.tokens, "all");
      const e = logitsError(got, want);
      assert.ok(e <= 1e-4, `T=${c.tokens.length}: logits rel error ${e}`);
      s.dispose();
    }
    await engine.dispose();
    await source.close();
  });

// Decode steps through the mat-vec kernel, whose W loads are unrolled: the
// GLU's down product (K = 1040) takes the unrolled loop and its remainder,
// reading q8 / q4 blocks.
for (const type of ["q8", "q4"])
  test(`${type} decode steps with a long mat-vec match the reference given the same dequantized weights`, async () => {
    const ctx = await gpuOrSkip();
    if (!ctx) return;
    const source = randomModel({ decoder_embed_dim: 64, decoder_layers: 1, decoder_attention_heads: 2, glu_dim: 1040, vocab_size: 40 }, { seed: 3 });
    const engine = await createWebGpuEngine(source, { context: ctx, dtype: type });
    const reference = await createReferenceEngine(dequantized(source, type));
    const tokens = [5, 17, 2, 39, 11, 0];
    const s = engine.createSession();
    const got = [];
    for (const t of tokens) got.push(await s.step(t));
    const want = reference.createSession().prefillF64(tokens, "all");
    const e = logitsError(got, want);
    assert.ok(e <= 1e-4, `logits rel error ${e}`);
    s.dispose();
    await engine.dispose();
  });

test.run();
