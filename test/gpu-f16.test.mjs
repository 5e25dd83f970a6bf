// f16 weights on the GPU (two per u32, read with unpack2x16float): the f16
// rounding itself, and whole models against references with the same weights.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { gpuOrSkip } from "./gpu-support.mjs";
import { editedSource } from "./helpers/edited-source.mjs";
import { loadFixture, logitsError, openFixtureModel } from "./helpers/fixtures.mjs";
import { rejects } from "./helpers/rejects.mjs";

const { f32ToF16Bits } = await import("../dist/gpu/f16.js");
const { f16ToF32 } = await import("../dist/model/dtype.js");
const { createWebGpuEngine } = await import("../dist/gpu/engine.js");
const { createReferenceEngine } = await import("../dist/reference/engine.js");
const { parseConfig } = await import("../dist/model/config.js");
const { layerTensorName } = await import("../dist/model/names.js");
const { randomWeightSource } = await import("../dist/model/preset.js");

test("f32ToF16Bits: every finite f16 round-trips, ties go to even, overflow and underflow", () => {
  for (let h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue; // NaN
    assert.is(f32ToF16Bits(f16ToF32(h)), h, `f16 0x${h.toString(16)}`);
  }
  assert.is(f32ToF16Bits(1 + 2 ** -11), 0x3c00); // halfway: down to even
  assert.is(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02); // halfway: up to even
  assert.is(f32ToF16Bits(0.1), 0x2e66);
  assert.is(f32ToF16Bits(65520), 0x7c00); // rounds past the largest finite
  assert.is(f32ToF16Bits(-1e-9), 0x8000);
  assert.is(f32ToF16Bits(2 ** -25 * 1.5), 0x0001); // above half the smallest subnormal
});

test("sharded-f16 (weights stored f16, so exact in f16): webgpu f16 logits match PyTorch", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  const fx = loadFixture("sharded-f16");
  const source = await openFixtureModel(fx);
  const engine = await createWebGpuEngine(source, { context: ctx, dtype: "f16" });
  assert.is(engine.dtype, "f16");
  for (const c of fx.cases.filter((x) => [1, 65, 130].includes(x.tokens.length))) {
    const s = engine.createSession();
    const e = logitsError(await s.prefill(c.tokens, "all"), c.logits);
    assert.ok(e <= 1e-4, `T=${c.tokens.length}: logits rel error ${e}`);
    s.dispose();
  }
  await engine.dispose();
  await source.close();
});

// The tensors the engine stores as f16: the projection matrices, the embedding and the head
// (norms, biases, conv and aug_balance stay f32).
const MATRIX = /(q_proj|k_gate|v_proj|g_proj|out_proj|l1|l2|l3)\.weight$|embed_tokens\.weight$|^lm_head\.weight$/;

/** A WeightSource whose matrices read as their nearest f16 values. */
function roundedToF16(source) {
  return editedSource(source, (name, a) => {
    if (MATRIX.test(name)) for (let i = 0; i < a.length; i++) a[i] = f16ToF32(f32ToF16Bits(a[i]));
  });
}

test("tiny-f32 run with f16 weights: matches the reference engine given the same f16-rounded weights", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  const fx = loadFixture("tiny-f32");
  const source = await openFixtureModel(fx);
  const engine = await createWebGpuEngine(source, { context: ctx, dtype: "f16" });
  const reference = await createReferenceEngine(roundedToF16(source));
  for (const c of fx.cases.filter((x) => [2, 64, 130].includes(x.tokens.length))) {
    const s = engine.createSession();
    const got = await s.prefill(c.tokens, "all");
    const want = reference.createSession().prefillF64(c.tokens, "all");
    const e = logitsError(got, want);
    assert.ok(e <= 1e-4, `T=${c.tokens.length}: logits rel error ${e}`);
    // and f16 is a real rounding: the f32 fixture logits differ more
    assert.ok(logitsError(got, c.logits) > e, "f16 weights change the logits");
    s.dispose();
  }
  await engine.dispose();
  await source.close();
});

test("f16 weights: a value f16 cannot hold is refused at load, naming the tensor; the largest f16 loads", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  const config = parseConfig({ model_type: "metala", decoder_embed_dim: 64, decoder_layers: 1, decoder_attention_heads: 2, glu_dim: 64, vocab_size: 50 });
  const l3 = layerTensorName(0, "l3");
  const poked = (value) => editedSource(randomWeightSource(config, "poked", 1), (name, a) => name === l3 && (a[7] = value));
  for (const value of [65520, -1e6, Infinity, NaN])
    await rejects(() => createWebGpuEngine(poked(value), { context: ctx, dtype: "f16" }), "weights", [l3, "f16", "--dtype f32"]);
  for (const value of [65504, -65519]) await (await createWebGpuEngine(poked(value), { context: ctx, dtype: "f16" })).dispose();
  await (await createWebGpuEngine(poked(1e6), { context: ctx, dtype: "f32" })).dispose();
});

test.run();
