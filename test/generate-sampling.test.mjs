// The sampler and its seeded PRNG. Expected PRNG outputs come from an
// independent Python transcription of xoshiro128** seeded by splitmix32
// (values pasted below); sampling distributions are checked against
// probabilities computed here by hand.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Prng } from "../dist/generate/prng.js";
import { argmax, resolveSampling, sampleToken } from "../dist/generate/sampling.js";

test("prng: xoshiro128** stream matches an independent implementation", () => {
  const expected = {
    0: [3809008728, 1133695204, 53579671, 2891528803],
    42: [2837322924, 544945897, 479756282, 3500138142],
    8589934599: [3616982058, 3568987857, 2681310436, 1145618998],
  };
  for (const [seed, values] of Object.entries(expected)) {
    const r = new Prng(Number(seed));
    assert.equal(values.map(() => r.nextUint32()), values, `seed ${seed}`);
  }
  assert.is(new Prng(42).nextFloat(), 0.6606157208001621);
});

test("argmax: ties go to the lowest id", () => {
  assert.is(argmax(Float32Array.from([1, 3, 3, 2])), 1);
  assert.is(argmax(Float32Array.from([-5, -5])), 0);
});

test("greedy: temperature 0 ignores the rng and returns argmax", () => {
  const s = resolveSampling({});
  assert.is(sampleToken(Float32Array.from([0.1, 2, 1.9]), s, new Prng(1), []), 1);
});

function frequencies(logits, options, draws, seed = 7) {
  const s = resolveSampling(options);
  const rng = new Prng(seed);
  const counts = new Array(logits.length).fill(0);
  for (let i = 0; i < draws; i++) counts[sampleToken(Float32Array.from(logits), s, rng, [])]++;
  return counts.map((c) => c / draws);
}

function softmax(x, temperature = 1) {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp((v - m) / temperature));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

test("temperature sampling follows softmax(logits / T)", () => {
  const logits = [1, 2, 0.5, 3];
  for (const T of [0.5, 1, 2]) {
    const f = frequencies(logits, { temperature: T }, 40000);
    const p = softmax(logits, T);
    // 40000 draws: standard error <= 0.0025; 0.012 is ~5 sigma
    p.forEach((pi, i) => assert.ok(Math.abs(f[i] - pi) < 0.012, `T=${T} token ${i}: ${f[i]} vs ${pi}`));
  }
});

test("top-k keeps only the k most likely tokens, renormalised", () => {
  const logits = [1, 2, 0.5, 3];
  const f = frequencies(logits, { temperature: 1, topK: 2 }, 20000);
  assert.is(f[0], 0);
  assert.is(f[2], 0);
  const p3 = Math.exp(3) / (Math.exp(3) + Math.exp(2));
  assert.ok(Math.abs(f[3] - p3) < 0.015, `${f[3]} vs ${p3}`);
});

test("top-p keeps the smallest head reaching p", () => {
  // probabilities 0.5, 0.3, 0.15, 0.05: p = 0.75 keeps the first two (0.8 >= 0.75)
  const logits = [0.5, 0.3, 0.15, 0.05].map(Math.log);
  const f = frequencies(logits, { temperature: 1, topP: 0.75 }, 20000);
  assert.is(f[2] + f[3], 0);
  assert.ok(Math.abs(f[0] - 0.625) < 0.015, `${f[0]}`);
  // p = 0.8 exactly: 0.5 + 0.3 reaches it, still two tokens
  const g = frequencies(logits, { temperature: 1, topP: 0.85 }, 20000);
  assert.ok(g[2] > 0 && g[3] === 0, "0.85 needs the third token, not the fourth");
});

test("top-p after top-k is relative to what top-k kept", () => {
  // top-k 2 keeps 0.5 and 0.3, renormalised 0.625 / 0.375: top-p 0.6 keeps only the first
  const logits = [0.5, 0.3, 0.15, 0.05].map(Math.log);
  const f = frequencies(logits, { temperature: 1, topK: 2, topP: 0.6 }, 2000);
  assert.is(f[0], 1);
});

test("min-p drops tokens below min_p times the top probability", () => {
  const logits = [0.5, 0.3, 0.15, 0.05].map(Math.log);
  const f = frequencies(logits, { temperature: 1, minP: 0.25 }, 20000); // floor 0.125: drops 0.05 only
  assert.is(f[3], 0);
  assert.ok(f[2] > 0.1, `${f[2]}`);
});

test("repetition penalty divides positive and multiplies negative logits of seen tokens", () => {
  const s = resolveSampling({ repetitionPenalty: 2 });
  // token 0: 3 -> 1.5 loses to token 1 (2); token 2: -1 stays below
  assert.is(sampleToken(Float32Array.from([3, 2, -1]), s, null, [0, 0, 2]), 1);
  // negative logits get more negative: -0.5 * 2 = -1 < -0.8
  assert.is(sampleToken(Float32Array.from([-0.5, -0.8]), s, null, [0]), 1);
});

test("same seed, same tokens; another seed, other tokens", () => {
  const logits = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i) * 2);
  const run = (seed) => {
    const s = resolveSampling({ temperature: 1 });
    const rng = new Prng(seed);
    return Array.from({ length: 40 }, () => sampleToken(logits, s, rng, []));
  };
  assert.equal(run(3), run(3));
  assert.not.equal(run(3), run(4));
});

test("sampling is robust to 1e-5 relative logit differences between engines", () => {
  // Near-tied logits whose order flips under the perturbation: sampling in
  // id order keeps the same token for all but draws within ~1e-5 of a boundary.
  // Pairs of tokens tied to 1e-7: the noise flips the order of about half the pairs.
  const base = Float64Array.from({ length: 1000 }, (_, i) => Math.cos(Math.floor(i / 2) * 0.37) * 3 + (i % 2) * 1e-7);
  const scale = Math.max(...base.map(Math.abs));
  const noise = new Prng(99);
  const perturbed = base.map((v) => v + (noise.nextFloat() * 2 - 1) * 1e-5 * scale);
  const s = resolveSampling({ temperature: 0.8, topP: 0.95, topK: 200 });
  const a = new Prng(5);
  const b = new Prng(5);
  let differ = 0;
  const n = 3000;
  for (let i = 0; i < n; i++)
    if (sampleToken(Float32Array.from(base), s, a, []) !== sampleToken(Float32Array.from(perturbed), s, b, [])) differ++;
  assert.ok(differ <= 3, `${differ} of ${n} draws differ`);
});

test("bad options are usage errors naming the option", () => {
  for (const [o, word] of [
    [{ temperature: -1 }, "temperature"],
    [{ topK: 1.5 }, "topK"],
    [{ topP: 0 }, "topP"],
    [{ minP: 2 }, "minP"],
    [{ repetitionPenalty: 0 }, "repetitionPenalty"],
  ]) {
    try {
      resolveSampling(o);
      assert.unreachable(`${word} accepted`);
    } catch (e) {
      assert.is(e.name, "MetalaError");
      assert.is(e.kind, "usage");
      assert.match(e.message, word);
    }
  }
});

test.run();
