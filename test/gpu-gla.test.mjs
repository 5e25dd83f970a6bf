import { test } from "uvu";
import * as assert from "uvu/assert";
import { gpuOrSkip, randomArray, relError } from "./gpu-support.mjs";

const { Pipelines, uploadF32, uniformU32, storageBuffer } = await import("../dist/gpu/pipelines.js");
const { GlaOp } = await import("../dist/gpu/gla.js");
const { readF32 } = await import("../dist/gpu/readback.js");
const ref = await import("../dist/reference/ops.js");
const { glaRecurrent } = await import("../dist/reference/gla.js");

let pipelines;

/**
 * Runs the GPU GLA (decay/key, then the 3 chunked passes or, up to
 * `parallelMax` tokens, the parallel pass; aug + head norm + gate) on
 * random projections; with `split` the projections arrive as bias + two
 * split-K partial sums (P itself holds garbage) for decay/key to complete.
 */
async function runGla(ctx, { H, K, V, T, aShift = 0, aScale = 3, seed = 1, enough, parallelMax = 0, split = false }) {
  const { device } = ctx;
  pipelines ??= new Pipelines(device);
  const DK = H * K, D = H * V, NP = 2 * DK + 2 * D;
  const m = { D, H, K, V, DK, NP, Q_OFF: 0, A_OFF: DK, V_OFF: 2 * DK, G_OFF: 2 * DK + D, SCALE: { f32: 1 / Math.sqrt(K) } };
  const P = randomArray(T * NP, seed);
  const aRand = randomArray(T * DK, seed + 100, aScale);
  for (let t = 0; t < T; t++) for (let j = 0; j < DK; j++) P[t * NP + DK + j] = aRand[t * DK + j] + aShift;
  const S0 = randomArray(H * K * V, seed + 7, 0.5);
  const waug = randomArray(DK, seed + 9);
  const nC = Math.ceil(T / 64);
  const bias = randomArray(NP, seed + 11);
  const part1 = randomArray(T * NP, seed + 13);
  const part0 = P.map((x, i) => x - bias[i % NP] - part1[i]);
  const bufs = {
    dims: uniformU32(device, [T, nC, 0, 0, split ? 2 : 0, 0, 0, 0]),
    P: uploadF32(device, split ? new Float32Array(T * NP).fill(1e30) : P),
    B: storageBuffer(device, nC * 64 * DK * 4),
    Kk: storageBuffer(device, nC * 64 * DK * 4),
    U: storageBuffer(device, nC * H * K * V * 4),
    S: uploadF32(device, S0),
    O: storageBuffer(device, T * D * 4),
    waug: uploadF32(device, waug),
    partials: uploadF32(device, Float32Array.from([...part0, ...part1])),
    projBias: uploadF32(device, bias),
  };
  const op = await GlaOp.create(pipelines, m, bufs, enough, parallelMax);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  op.encode(pass, T, nC);
  pass.end();
  device.queue.submit([enc.finish()]);
  const O = await readF32(device, bufs.O, T * D);
  const S = await readF32(device, bufs.S, H * K * V);
  const keys = await readF32(device, bufs.Kk, T * DK);
  for (const b of Object.values(bufs)) b.destroy();

  // the reference: the recurrent definition, token by token, then the per-token ops
  const shape = { H, K, V };
  const cols = (t, off, n) => Float64Array.from(P.subarray(t * NP + off, t * NP + off + n));
  const seq = { q: [], k: [], gk: [], v: [] };
  for (let t = 0; t < T; t++) {
    const dk = ref.decayKey(cols(t, DK, DK));
    seq.q.push(cols(t, 0, DK));
    seq.k.push(dk.k);
    seq.gk.push(dk.gk);
    seq.v.push(cols(t, 2 * DK, D));
  }
  const Sref = Float32Array.from(S0);
  const o = glaRecurrent(seq, Sref, shape);
  const want = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    const aug = ref.selfAugment(o[t], seq.q[t], seq.k[t], waug, seq.v[t], shape);
    want.set(ref.gateOutput(cols(t, 2 * DK + D, D), ref.headNorm(aug, H, V)), t * D);
  }
  return { O, S, want, Sref, keys, wantKeys: seq.k, minAlpha: Math.min(...seq.gk.map((g) => Math.min(...g))) };
}

// The GLA's forms: chunked, with the chunk-state kernel's value columns whole (and the output per
// chunk) or split over two workgroups (the output per sub-chunk); and the parallel pass.
const forms = [
  { name: "chunked VS=1", opts: { enough: 0 } },
  { name: "chunked VS=2", opts: { enough: Infinity } },
  { name: "parallel", opts: { parallelMax: 1024 } },
];

// The chunk-state kernel's register tiles of TK key rows (gla.ts stateKeyRows) by shape and value
// split VS = 1, 2: the small shapes take TK = 1; metala-380m's head (K = 64, V = 128) takes 8, 4;
// K = 60, V = 132 takes 8 with a ragged last key block, and 2 on ragged value slices (66 columns),
// both with two tiles per thread.
const shapes = [
  { H: 2, K: 16, V: 32 },
  { H: 3, K: 24, V: 20 }, // K not a multiple of 16
  { H: 2, K: 12, V: 22, Ts: [17, 65, 200] }, // V not a multiple of 4: zero-padded column quads
  { H: 1, K: 64, V: 128, Ts: [63, 65, 200, 600] },
  { H: 1, K: 60, V: 132, Ts: [63, 130, 600] },
];
for (const { Ts = [1, 2, 17, 63, 64, 65, 130, 200, 600], ...sh } of shapes)
  test(`gla H=${sh.H} K=${sh.K} V=${sh.V}: outputs and final state match the recurrent reference across chunk boundaries`, async () => {
    const ctx = await gpuOrSkip();
    if (!ctx) return;
    // every form of the chunk-state kernel (value columns whole, split over two workgroups) and of
    // the output kernel (per chunk with VS = 1, per sub-chunk with VS = 2); 600 tokens: a scan over
    // 10 chunks; and the parallel pass (600 tokens: 38 query sub-chunks over 10 chunks)
    for (const form of forms)
      for (const T of Ts) {
        const r = await runGla(ctx, { ...sh, T, seed: T, ...form.opts });
        const eo = relError(r.O, r.want), es = relError(r.S, r.Sref);
        assert.ok(eo < 2e-5, `T=${T} ${form.name}: output rel error ${eo}`);
        assert.ok(es < 2e-5, `T=${T} ${form.name}: state rel error ${es}`);
      }
  });

test("gla after a split projection: decay/key first completes P from bias + split-K sums", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  for (const parallelMax of [0, 1024])
    for (const T of [17, 130]) {
      const r = await runGla(ctx, { H: 2, K: 16, V: 32, T, seed: 21, split: true, parallelMax });
      const eo = relError(r.O, r.want), es = relError(r.S, r.Sref);
      assert.ok(eo < 2e-5, `T=${T} parallelMax=${parallelMax}: output rel error ${eo}`);
      assert.ok(es < 2e-5, `T=${T} parallelMax=${parallelMax}: state rel error ${es}`);
    }
});

// k = 1 - exp(gk) for weak decays (a from 2 to 9: gk from -8e-3 to -8e-6), where exp(gk) - 1 and
// log(1 + e^-a) in f32 lose up to 1e-4 relative: math.wgsl's series keep k within a few ulp.
test("gla decay/key: weak decays keep the keys' relative precision", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  const T = 70, DK = 2 * 16;
  const r = await runGla(ctx, { H: 2, K: 16, V: 16, T, aShift: 5.5, aScale: 3.5, seed: 3 });
  let worst = 0;
  for (let t = 0; t < T; t++)
    for (let j = 0; j < DK; j++) worst = Math.max(worst, Math.abs(r.keys[t * DK + j] - r.wantKeys[t][j]) / r.wantKeys[t][j]);
  assert.ok(worst < 2e-6, `keys' worst relative error ${worst}`);
});

test("gla strong decay: per-token decays near 1e-6 (a chunk's total decay far below f32 range) stay finite and exact", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  // every form (both chunked output kernels, and the parallel pass, whose prompt-wide running decays
  // reach ~-2000 at 150 tokens)
  for (const form of forms) for (const T of [64, 150]) {
    // a ~ -220 +- 30: gk = logsigmoid(a)/16 ~ -14, so exp(-b) over 64 tokens would be ~e^880
    const r = await runGla(ctx, { H: 2, K: 16, V: 32, T, aShift: -220, aScale: 30, seed: 5, ...form.opts });
    assert.ok(r.minAlpha < -12, `decays are strong (min log decay ${r.minAlpha})`);
    assert.ok(r.O.every(Number.isFinite) && r.S.every(Number.isFinite), "finite");
    const eo = relError(r.O, r.want), es = relError(r.S, r.Sref);
    assert.ok(eo < 2e-5, `T=${T} ${form.name}: output rel error ${eo}`);
    assert.ok(es < 2e-5, `T=${T} ${form.name}: state rel error ${es}`);
  }
});

test("gla mixed decay: some dims strong, some ~1 (the per-dimension case)", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  for (const form of forms) {
    const r = await runGla(ctx, { H: 2, K: 16, V: 32, T: 140, aShift: -40, aScale: 60, seed: 3, ...form.opts });
    const eo = relError(r.O, r.want), es = relError(r.S, r.Sref);
    assert.ok(eo < 2e-5, `${form.name}: output rel error ${eo}`);
    assert.ok(es < 2e-5, `${form.name}: state rel error ${es}`);
  }
});

test.run();
