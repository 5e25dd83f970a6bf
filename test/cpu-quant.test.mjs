// Quantized storage (f16, q8, q4) against the same model at f32 on the wasm
// engine: the f32 engine writes 256 tokens greedily, then each dtype reads
// that text back (prefill, and step by step) and we count how often its own
// greedy choice is the f32 one, and how much its NLL of the text moved.
//
// Thresholds, from measurements on these models and the fixtures (see the
// CPU engine report): q8 stores each weight within half a step of max/127 of
// its block and quantizes the input the same way, about 0.4% of the block's
// range, so only near-ties flip: measured 0.92-1.0 agreement, |dNLL| <= 0.02
// nats. q4 has 16 levels per block (one step is 1/8 of the block maximum),
// which on these random models (no trained margins between top logits)
// flips many near-ties: measured 0.42-0.97 agreement, dNLL +0.14..+0.6. The
// bounds below sit under the measured worst with some margin, and far above
// what a wrong layout or scale gives (agreement near 1/vocab, dNLL of nats).
// The relaxed-SIMD build (what the CLI runs where the host has it) has its
// own q4 input path: the last test re-runs this file in a child Node with
// relaxed SIMD enabled, so both builds meet the same limits.
import { test } from "uvu";
import { passesWithRelaxedSimd } from "./helpers/relaxed-rerun.mjs";
import * as assert from "uvu/assert";
import { createWasmEngine } from "../dist/cpu/engine.js";
import { parseConfig } from "../dist/model/config.js";
import { randomWeightSource } from "../dist/model/preset.js";
import { nll } from "../dist/reference/ops.js";
import { layerTensorName } from "../dist/model/names.js";
import { editedSource } from "./helpers/edited-source.mjs";
import { loadFixture, openFixtureModel } from "./helpers/fixtures.mjs";
import { rejects } from "./helpers/rejects.mjs";

const LIMITS = {
  "tiny-f32": { f16: [0.99, 0.002], q8: [0.95, 0.03], q4: [0.9, 0.35] },
  random256: { f16: [0.99, 0.002], q8: [0.9, 0.03], q4: [0.4, 0.35] },
};

const argmax = (v) => {
  let b = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[b]) b = i;
  return b;
};

async function greedyText(source) {
  const engine = await createWasmEngine(source, { dtype: "f32", threads: 2 });
  const s = engine.createSession();
  const text = [1, 5, 9, 13];
  let logits = (await s.prefill(text, "last"))[0];
  while (text.length < 260) {
    const t = argmax(logits);
    text.push(t);
    logits = await s.step(t);
  }
  s.reset();
  const f32Logits = await s.prefill(text, "all");
  await engine.dispose();
  return { text, f32Nll: nll(f32Logits, text) };
}

function agreement(logits, text) {
  let same = 0;
  for (let t = 3; t < text.length - 1; t++) if (argmax(logits[t]) === text[t + 1]) same++;
  return same / (text.length - 4);
}

async function check(label, source) {
  const { text, f32Nll } = await greedyText(source);
  for (const [dtype, [minAgree, maxDelta]] of Object.entries(LIMITS[label])) {
    const engine = await createWasmEngine(source, { dtype, threads: 2 });
    if (process.env.METALA_TEST_SAY_BUILD) console.log(`engine: ${engine.description}`);
    const prefilled = await engine.createSession().prefill(text, "all");
    const s = engine.createSession();
    const stepped = [];
    for (const t of text) stepped.push(await s.step(t));
    await engine.dispose();
    for (const [path, logits] of [["prefill", prefilled], ["step", stepped]]) {
      const agree = agreement(logits, text);
      const delta = nll(logits, text) - f32Nll;
      assert.ok(agree >= minAgree, `${label} ${dtype} ${path}: greedy agreement ${agree.toFixed(3)} < ${minAgree}`);
      assert.ok(Math.abs(delta) <= maxDelta, `${label} ${dtype} ${path}: NLL change ${delta.toFixed(4)} beyond ${maxDelta}`);
    }
  }
}

test("tiny-f32 fixture: f16, q8, q4 agree with f32 within the stated limits", async () => {
  const source = await openFixtureModel(loadFixture("tiny-f32"));
  await check("tiny-f32", source);
  await source.close();
});

test("random d=256 model (4 layers, vocab 2000): f16, q8, q4 agree with f32 within the stated limits", async () => {
  const config = parseConfig({ model_type: "metala", decoder_embed_dim: 256, decoder_layers: 4, decoder_attention_heads: 4, glu_dim: 512, vocab_size: 2000, tie_word_embeddings: false });
  await check("random256", randomWeightSource(config, "random256", 3));
});

test("f16 storage: a value f16 cannot hold is refused at load, naming the tensor; the largest f16 loads", async () => {
  const config = parseConfig({ model_type: "metala", decoder_embed_dim: 64, decoder_layers: 1, decoder_attention_heads: 2, glu_dim: 64, vocab_size: 50 });
  const l3 = layerTensorName(0, "l3");
  const poked = (value) => editedSource(randomWeightSource(config, "poked", 1), (name, a) => name === l3 && (a[7] = value));
  for (const value of [65520, -1e6, Infinity, NaN])
    await rejects(() => createWasmEngine(poked(value), { dtype: "f16", threads: 1 }), "weights", [l3, "f16", "--dtype f32"]);
  for (const value of [65504, -65519]) await (await createWasmEngine(poked(value), { dtype: "f16", threads: 1 })).dispose();
  await (await createWasmEngine(poked(1e6), { dtype: "f32", threads: 1 })).dispose();
});

test("q8 and q4 decode: logits with 1, 2 and 3 threads identical bit for bit (their products run in one share per thread, split where the thread count puts it, the head's ending in a partial quad)", async () => {
  const config = parseConfig({ model_type: "metala", decoder_embed_dim: 96, decoder_layers: 2, decoder_attention_heads: 3, glu_dim: 160, vocab_size: 301, tie_word_embeddings: false });
  const source = randomWeightSource(config, "shares", 5);
  const tokens = Array.from({ length: 12 }, (_, i) => (i * 37 + 5) % config.vocabSize);
  for (const dtype of ["q8", "q4"]) {
    const runs = [];
    for (const threads of [1, 2, 3]) {
      const engine = await createWasmEngine(source, { dtype, threads });
      const s = engine.createSession();
      const logits = [];
      for (const t of tokens) logits.push(await s.step(t));
      await engine.dispose();
      runs.push(logits);
    }
    for (const [i, run] of runs.entries())
      run.forEach((row, t) => assert.equal(row, runs[0][t], `${dtype}: ${i + 1} threads vs 1 differ at step ${t}`));
  }
});

if (!process.execArgv.includes("--experimental-wasm-relaxed-simd")) {
  test("the relaxed-SIMD build meets the same limits (this file in a child Node with the flag)", () => {
    passesWithRelaxedSimd(import.meta.url, /engine: wasm relaxed-simd q8/);
  });
}

test.run();
