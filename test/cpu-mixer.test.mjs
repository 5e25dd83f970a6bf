// tokenMixerHeads (assembly/ops.ts) against the reference ops chained by
// hand (src/reference/ops.ts, float64) on head shapes the 380m-sized tests
// do not reach: K not a multiple of 4 (the GLA step's leftover rows, the
// self-augmentation dot product's scalar tail) and small V, heads split
// between two calls as the pool splits them, several tokens.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as ref from "../dist/reference/ops.js";
import { seededRandom, uniform } from "./helpers/random-model.mjs";
import { kernelHarness } from "./helpers/wasm-kernels.mjs";

const { k, build, buf, alloc, put, get } = await kernelHarness(32);
const rand = seededRandom(777);
const maxAbs = (a) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
function close(actual, expected, tol, what) {
  const scale = Math.max(1, maxAbs(expected));
  for (let i = 0; i < expected.length; i++)
    if (!(Math.abs(actual[i] - expected[i]) <= tol * scale)) assert.unreachable(`${what}[${i}]: ${actual[i]} vs ${expected[i]} (tol ${tol * scale})`);
}

for (const [H, K, V, T] of [[3, 6, 8, 2], [2, 3, 12, 3], [2, 5, 4, 1], [1, 9, 16, 2]]) {
  test(`tokenMixerHeads H=${H} K=${K} V=${V} over ${T} tokens, heads split 1 | ${H - 1} = reference bias, decayKey, glaStep, selfAugment, headNorm, gate`, () => {
    const dk = H * K, d = H * V, ld = 2 * dk + 2 * d;
    const P = uniform(rand, T * ld, 2);
    const S0 = uniform(rand, H * K * V, 1);
    const gBias = uniform(rand, d, 0.5), wAug = uniform(rand, dk, 3);
    const Pp = put(P), Sp = put(S0), kp = alloc(4 * T * dk), op = alloc(4 * T * d), gp = put(gBias), wp = put(wAug);
    k.tokenMixerHeads(Sp, Pp, ld, kp, gp, wp, op, H, K, V, T, 0, 0, 0, 1, 0);
    if (H > 1) k.tokenMixerHeads(Sp, Pp, ld, kp, gp, wp, op, H, K, V, T, 0, 0, 1, H, 1);
    const S = Float64Array.from(S0);
    const o = get(op, T * d);
    const shape = { H, K, V };
    for (let t = 0; t < T; t++) {
      const row = (off, n) => Float64Array.from(P.subarray(t * ld + off, t * ld + off + n));
      const q = row(0, dk), v = row(2 * dk, d);
      const g = row(2 * dk + d, d).map((x, i) => x + gBias[i]);
      const dec = ref.decayKey(row(dk, dk));
      // the kernel keeps alpha and k in f32 between its steps
      const alpha = Float64Array.from(new Float32Array(dec.alpha)), key = Float64Array.from(new Float32Array(dec.k));
      const gla = ref.glaStep(S, q, key, alpha, v, shape);
      const expected = ref.gateOutput(g, ref.headNorm(ref.selfAugment(gla, q, key, wAug, v, shape), H, V));
      close(o.subarray(t * d, (t + 1) * d), expected, 1e-5, `token ${t} o`);
      close(get(kp + 4 * t * dk, dk), dec.k, 1e-6, `token ${t} k`);
    }
    close(get(Sp, H * K * V), S, 1e-5, "S");
  });
}

test.run();
