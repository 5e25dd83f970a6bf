import { test } from "uvu";
import * as assert from "uvu/assert";
import { gpuOrSkip, randomArray, relError } from "./gpu-support.mjs";

const { Pipelines, uploadF32, uniformU32, storageBuffer } = await import("../dist/gpu/pipelines.js");
const { GemmOp, GEMM_TILES, GEMM_PLAN, SQUARE_TILE, chooseProduct, chooseResidual, chooseSplits, chooseTile, gemvLanes, wideTileFor } = await import("../dist/gpu/gemm.js");
const { readF32 } = await import("../dist/gpu/readback.js");

// Plain float64 loops, the definition of each epilogue.
function refGemm(A, W, bias, M, N, K, lda) {
  const C = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = bias[n];
      for (let k = 0; k < K; k++) s += A[m * lda + k] * W[n * K + k];
      C[m * N + n] = s;
    }
  return C;
}
const silu = (x) => x / (1 + Math.exp(-x));
// erf by its Taylor series: exact enough for |x| < 4 in float64
function erf(x) {
  let sum = 0, term = x;
  for (let n = 0; n < 200; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}
const gelu = (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));

let pipelines;
// The pre-norms in float64 (spec: simplermsnorm without weight, or LayerNorm with weight and bias).
function refNorm(x, layernorm, w, b) {
  const n = x.length;
  const mean = layernorm ? x.reduce((s, v) => s + v, 0) / n : 0;
  const v = x.reduce((s, e) => s + (e - mean) ** 2, 0) / n;
  const inv = 1 / Math.sqrt(v + (layernorm ? 1e-5 : 1e-6));
  return Float64Array.from(x, (e, i) => (layernorm ? (e - mean) * inv * w[i] + b[i] : e * inv));
}

async function runGemm(ctx, { M, N, K, lda, epilogue, act = "silu", tile, C0, aOff = 0, norm, splits = 1 }) {
  const { device } = ctx;
  const p = (pipelines ??= new Pipelines(device));
  const A = randomArray(aOff + M * lda, 11 + M + K);
  const W = randomArray(N * K, 7 + N, 0.5);
  const bias = randomArray(N, 3 + N, 0.25);
  const outCols = epilogue === "glu" ? N / 2 : N;
  const init = C0 ?? new Float32Array(M * outCols);
  const bufs = {
    rows: uniformU32(device, [M]),
    A: uploadF32(device, A),
    W: uploadF32(device, W),
    bias: uploadF32(device, bias),
    C: uploadF32(device, init),
  };
  // norm: the kernel gets A un-normalised (shifted and scaled, so a missed mean or scale shows)
  let normW, normB, normParts;
  if (norm) {
    for (let i = 0; i < A.length; i++) A[i] = 3 * A[i] + 0.7;
    normW = randomArray(K, 23, 1);
    normB = randomArray(K, 29, 0.5);
    normParts = { A: uploadF32(device, A), w: uploadF32(device, normW), b: uploadF32(device, normB), layernorm: norm === "layernorm" };
  }
  // split-K: the slices' sums land in `partials`, poisoned first so that a slice left unwritten shows
  const partials = splits > 1 ? uploadF32(device, new Float32Array(splits * M * N).fill(1e30)) : undefined;
  // (pipelines for the forced tile only, so that a tile outside GEMM_TILES runs too)
  const op = await GemmOp.create(p, { N, K, lda, ldc: outCols, aOff }, epilogue, act, { ...bufs, gemvNorm: normParts, partials }, tile ? { tile } : undefined);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  op.encode(pass, M, tile, splits);
  pass.end();
  device.queue.submit([enc.finish()]);
  const got = await readF32(device, bufs.C, M * outCols);
  const sliceSums = partials && (await readF32(device, partials, splits * M * N));
  partials?.destroy();
  const input = norm ? refNorm(Float64Array.from(A.subarray(aOff, aOff + K)), norm === "layernorm", normW, normB) : A.subarray(aOff);
  const ref = refGemm(input, W, bias, M, N, K, lda);
  for (const b of Object.values(bufs)) b.destroy();
  if (normParts) for (const b of [normParts.A, normParts.w, normParts.b]) b.destroy();
  op.destroy();
  return { got, ref, init, sliceSums };
}

// The tile/split choices measured best on an H200 for metala-380m's products (gemm.ts), as a
// policy: widths d = 1024, 3 d = 3072 (q, k, v, g), 2 x 2816 (GLU); K = 1024.
test("tile and split-K choice: residual products, projections, GLU", () => {
  const { t128x64, t64x64 } = GEMM_TILES;
  const residual = (M) => chooseResidual(M, 1024, 1024);
  // the big tile where 4 slices at most give it 1024 workgroups
  assert.equal(residual(2048), { tile: t128x64, splits: 4 });
  assert.equal(residual(4096), { tile: t128x64, splits: 2 });
  // else the 64x64 tile with the most slices that fit one round (660 workgroups)
  assert.equal(residual(512), { tile: t64x64, splits: 4 });
  assert.equal(residual(640), { tile: t64x64, splits: 4 });
  // (3 slices: residual products only)
  assert.equal(residual(704), { tile: t64x64, splits: 3 });
  assert.equal(residual(832), { tile: t64x64, splits: 3 });
  assert.equal(residual(896), { tile: t64x64, splits: 2 });
  assert.equal(residual(1024), { tile: t64x64, splits: 2 });
  assert.equal(residual(1536), { tile: t64x64, splits: 1 });
  // too short for either rule: chooseSplits' choice
  assert.equal(residual(128), { tile: chooseTile(128, 1024, GEMM_TILES, chooseSplits(128, 1024, 1024)), splits: chooseSplits(128, 1024, 1024) });
  // a slice may not be shorter than minSplitK
  assert.equal(chooseResidual(512, 1024, 1024, { ...GEMM_PLAN, minSplitK: 512 }), { tile: t64x64, splits: 2 });
  // the projections: the 64x64 tile unsplit where 128x64 leaves a round unfilled and 64x64 fits one
  assert.equal(chooseProduct(512, 3072, 1024), { tile: t64x64, splits: 1 });
  assert.equal(chooseProduct(704, 3072, 1024), { tile: t64x64, splits: 1 });
  assert.equal(chooseProduct(1024, 3072, 1024), { tile: t128x64, splits: 1 });
  // 128 tokens: only splitting fills the GPU
  assert.ok(chooseProduct(128, 3072, 1024).splits > 1);
  // the GLU at 512: 352 workgroups of 128x64 (704 of 64x64 would be more than a round)
  assert.equal(chooseProduct(512, 5632, 1024), { tile: t128x64, splits: 1 });
  // a second round of 128x64 less than half full: K slices for at least 2.5 rounds
  assert.equal(chooseProduct(640, 5632, 1024), { tile: t128x64, splits: 4 });
  assert.equal(chooseProduct(768, 5632, 1024), { tile: t128x64, splits: 2 });
  assert.equal(chooseProduct(896, 5632, 1024), { tile: t128x64, splits: 1 });
  // (not reachable with slices of at least 512: unsplit, as chooseSplits has it)
  assert.equal(chooseProduct(640, 5632, 1024, { ...GEMM_PLAN, minSplitK: 512 }), { tile: t128x64, splits: 1 });
  // a plan of one tile (software adapters) falls back to chooseSplits everywhere
  const one = { tiles: { t64x64 }, minSplitK: 256 };
  assert.equal(chooseResidual(512, 1024, 1024, one), { tile: t64x64, splits: chooseSplits(512, 1024, 1024, one) });
  assert.equal(chooseProduct(512, 3072, 1024, one), { tile: t64x64, splits: chooseSplits(512, 3072, 1024, one) });
  // the wide tile: 16 x 4 a thread for float weights (176 invocations, every WebGPU device), 8 x 4
  // for quantized ones (352: only where the device runs that many)
  const limits = (n) => ({ maxComputeInvocationsPerWorkgroup: n, maxComputeWorkgroupSizeX: n });
  const WIDE = wideTileFor(limits(256), "f32");
  assert.equal(WIDE, { BM: 128, BN: 88, BK: 16, TM: 16, TN: 4 });
  assert.equal(wideTileFor(limits(256), "f16"), WIDE);
  assert.equal(wideTileFor(limits(256), "q8"), undefined);
  assert.equal(wideTileFor(limits(352), "q4"), { BM: 128, BN: 88, BK: 16, TM: 8, TN: 4 });
  // with it: the GLU where 128x64 fills its one or two rounds to 89% and the wide tile its rounds of
  // 264 to 97%; elsewhere as without it
  const wide = { ...GEMM_PLAN, wide: WIDE };
  assert.equal(chooseProduct(512, 5632, 1024, wide), { tile: WIDE, splits: 1 });
  assert.equal(chooseProduct(1024, 5632, 1024, wide), { tile: WIDE, splits: 1 });
  for (const M of [384, 640, 768, 896, 2048]) assert.equal(chooseProduct(M, 5632, 1024, wide), chooseProduct(M, 5632, 1024), `GLU M=${M}`);
  for (const M of [512, 1024, 1920]) assert.equal(chooseProduct(M, 3072, 1024, wide), chooseProduct(M, 3072, 1024), `q, k, v, g M=${M}`);
  // with the square tile (128x128): the residual products in the fewest slices (2, 3, 4; never
  // unsplit) that fill its rounds (264 workgroups a round) to 84% and keep 80% of their slots on real
  // rows, r rows of 8 tiles at N = 1024: 7 rows in 4 slices, 224 workgroups (84.8%), from M = 845
  // (845 / 896 x 224 / 264 = 0.8002; 844: 0.7992); 8 rows in 4 (256); 10-11 rows in 3 (240, 264);
  // 14 rows in 2 from 1690 (1690 / 1792 x 224 / 264 = 0.8002); 15-16 rows in 2 (240, 256); 20 and 22
  // rows in 3 (480, 528 of 528); 24 rows in 4 (768 of 792); 28 rows in 2 from 3457 (448 of 528: 3457 /
  // 3584 x 0.848 = 0.818), 30, 32 rows in 2 (480, 512 of 528). Not 9, 18 or 27 rows (1025-1152,
  // 2177-2304, 3329-3456), whose best slices fill 81.8% (216 of 264, 432 of 528, 432 of 528), nor 12
  // or 13 rows (192, 288, 384 of 264, 528, 528; 208 of 264, 312, 416 of 528), nor the lengths just
  // short of the thresholds above: as without it
  const square = { ...GEMM_PLAN, square: SQUARE_TILE };
  const squareSplits = [[845, 4], [1024, 4], [1153, 3], [1408, 3], [1690, 2], [1793, 2], [2048, 2], [2560, 3], [2816, 3], [3072, 4], [3457, 2], [3584, 2], [3840, 2], [4096, 2]];
  for (const [M, splits] of squareSplits) assert.equal(chooseResidual(M, 1024, 2816, square), { tile: SQUARE_TILE, splits }, `M=${M}`);
  for (const M of [512, 844, 1126, 1127, 1152, 1536, 1664, 1689, 2253, 2304, 3400, 3456]) assert.equal(chooseResidual(M, 1024, 1024, square), chooseResidual(M, 1024, 1024), `M=${M}`);
  // but at 80% with fewer filled, where the rules without it leave the 64x64 tile unsplit (metala-1b's
  // down product, N = 1536, at 1140: 9 rows of 12 tiles in 2 slices, 216 of 264, 1140 / 1152 x 0.818 =
  // 0.81; without it 64x64 unsplit, 432 workgroups of 660); not where they split it (760: 6 rows in 3,
  // 216, against 64x64 in 2)
  assert.equal(chooseResidual(1140, 1536, 4096), { tile: GEMM_TILES.t64x64, splits: 1 });
  assert.equal(chooseResidual(1140, 1536, 4096, square), { tile: SQUARE_TILE, splits: 2 });
  assert.equal(chooseResidual(760, 1536, 4096, square), chooseResidual(760, 1536, 4096));
  // and the projections and the GLU unsplit where 128x64 runs more than a round and the square tile
  // fills its rounds of 264 to 80%: r rows of 44 GLU tiles (5, 6, 10-12, 15-18, 32 rows: 83-100%;
  // not 7-9, 13-14: 58-79%), of 24 projection tiles (9-11, 18-22, 27-32 rows, beyond 8 where
  // 128x64 fits a round); elsewhere as before (the 64x64 tile where it fits one round)
  const squareAt = { glu: [513, 640, 768, 1153, 1536, 1793, 2304, 4096], proj: [1025, 1408, 2177, 2816, 3329, 4096] };
  const notAt = { glu: [384, 512, 769, 1152, 1537, 1792], proj: [576, 768, 1024, 1409, 2176, 2817, 3328] };
  for (const [name, N] of [["glu", 5632], ["proj", 3072]]) {
    for (const M of squareAt[name]) assert.equal(chooseProduct(M, N, 1024, square), { tile: SQUARE_TILE, splits: 1 }, `${name} M=${M}`);
    for (const M of notAt[name]) assert.equal(chooseProduct(M, N, 1024, square), chooseProduct(M, N, 1024), `${name} M=${M}`);
  }
  assert.equal(chooseProduct(512, 5632, 1024, { ...square, wide: WIDE }), { tile: WIDE, splits: 1 });
  // (2 slices shorter than minSplitK: not offered)
  assert.equal(chooseResidual(4096, 1024, 1024, { ...square, minSplitK: 1024 }), chooseResidual(4096, 1024, 1024, { ...GEMM_PLAN, minSplitK: 1024 }));
});

// unsplitMicros on the H200 rates (gemm.ts UNSPLIT_RATES, million multiply-adds a microsecond for a
// multiprocessor's slots: 128x64 0.128 with 1 slot, 64x64 0.133 with 5, the wide 128x88 0.129 with 2,
// the square 0.152 with 2), n = the busiest of 132 multiprocessors' workgroups, K = 1024 (a 64x64
// workgroup 4.194 M multiply-adds, 128x64 8.389, 128x88 11.53, 128x128 16.78), worked by hand:
test("launch rules: float weights' unsplit products take the 64x64 or wide tile where the rates have it faster", () => {
  const WIDE = wideTileFor({ maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024 }, "f32");
  const hw = { ...GEMM_PLAN, wide: WIDE, square: SQUARE_TILE, retileUnsplit: true };
  const { t128x64, t64x64 } = GEMM_TILES;
  // GLU at 960: the rules take the wide tile (512 workgroups, n = 4: 4 x 11.53 / 0.129 = 358 us);
  // 64x64 makes 1320, n = 10, two full rounds: 10 x 4.194 / 0.133 = 315 us
  assert.equal(chooseProduct(960, 5632, 1024, hw), { tile: t64x64, splits: 1 });
  // GLU at 832: 128x64 616 workgroups, n = 5: 328 us; 64x64 1144, n = 9 (a second round 4/5 full:
  // 0.133 x 9/10): 315 us
  assert.equal(chooseProduct(832, 5632, 1024, hw), { tile: t64x64, splits: 1 });
  // projections at 896: 128x64 336 workgroups, n = 3: 197 us; the wide tile 245, n = 2: 179 us
  assert.equal(chooseProduct(896, 3072, 1024, hw), { tile: WIDE, splits: 1 });
  // kept: the GLU at 512 on the wide tile (n = 2: 179 us; 64x64 n = 6, a round and a fifth: 315),
  // the projections at 512 on 64x64 (n = 3 of 5 slots: 0.133 x (1 - 0.28 x 2/5), 107 us; wide 179),
  // the GLU at 4096 on the square tile (n = 11: 0.152 x 11/12, 1325 us; 64x64 n = 43: 1419)
  assert.equal(chooseProduct(512, 5632, 1024, hw), { tile: WIDE, splits: 1 });
  assert.equal(chooseProduct(512, 3072, 1024, hw), { tile: t64x64, splits: 1 });
  assert.equal(chooseProduct(4096, 5632, 1024, hw), { tile: SQUARE_TILE, splits: 1 });
  // a tile that would leave a multiprocessor's slots unfilled is not offered: the GLU at 240 stays on
  // 64x64 (352 workgroups, n = 3: 107 us), where the wide tile (128 workgroups, n = 1 of 2 slots) would
  // model 1 x 11.53 / (0.129 x 0.86) = 104 us
  assert.equal(chooseProduct(240, 5632, 1024, hw), chooseProduct(240, 5632, 1024, { ...hw, retileUnsplit: false }));
  assert.equal(chooseProduct(240, 5632, 1024, hw), { tile: t64x64, splits: 1 });
  // split products keep the rules' tile and slices; so does a plan without retileUnsplit (quantized weights)
  assert.equal(chooseProduct(1536, 3072, 1024, hw), { tile: t128x64, splits: 2 });
  for (const M of [832, 896, 960]) assert.equal(chooseProduct(M, 5632, 1024, { ...hw, retileUnsplit: false }), chooseProduct(M, 5632, 1024, { ...GEMM_PLAN, wide: WIDE, square: SQUARE_TILE }));
});

test("a forward pass builds each product's pipelines in the forms its launch rule picks, no others", async () => {
  const { launchForms } = await import("../dist/gpu/forward.js");
  const { presetSource } = await import("../dist/model/preset.js");
  const WIDE = wideTileFor({ maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024 }, "f32");
  const { forms } = launchForms(presetSource("metala-380m").config, { ...GEMM_PLAN, wide: WIDE, square: SQUARE_TILE }, 4096);
  // the residual rule never leaves the square tile unsplit (its epilogue reads C), the product rules
  // take the wide and square tiles unsplit only (no slices to fold)
  assert.ok(forms.residual.split.has(SQUARE_TILE) && !forms.residual.unsplit.has(SQUARE_TILE), "residual: square split only");
  for (const k of ["proj", "glu"]) assert.ok(!forms[k].split.has(SQUARE_TILE) && !forms[k].split.has(WIDE), `${k}: no square or wide split`);
  assert.ok(forms.glu.unsplit.has(WIDE) && forms.glu.unsplit.has(SQUARE_TILE) && forms.proj.unsplit.has(SQUARE_TILE), "the wide and square tiles unsplit where chosen");
  // chunks of at most 256 tokens: too short for the wide and square tiles' rules (more than a round
  // of 128x64 workgroups, or 89% of one: 352 of them for the GLU at 512)
  const short = launchForms(presetSource("metala-380m").config, { ...GEMM_PLAN, wide: WIDE, square: SQUARE_TILE }, 256).forms;
  for (const k of ["residual", "proj", "glu"]) for (const t of [...short[k].unsplit, ...short[k].split]) assert.ok(t !== WIDE && t !== SQUARE_TILE, `${k} at T <= 256: ${t.BM}x${t.BN}`);
});

test("gemm: a tile form not built is refused when recorded, not dispatched with no pipeline", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  const { device } = ctx;
  const p = (pipelines ??= new Pipelines(device));
  const bufs = { rows: uniformU32(device, [8]), A: storageBuffer(device, 8 * 16 * 4), W: storageBuffer(device, 16 * 16 * 4), bias: storageBuffer(device, 16 * 4), C: storageBuffer(device, 8 * 16 * 4), partials: storageBuffer(device, 2 * 8 * 16 * 4) };
  const forms = { unsplit: new Set([GEMM_TILES.t64x64]), split: new Set([GEMM_TILES.t128x64]) };
  const op = await GemmOp.create(p, { N: 16, K: 16, lda: 16, ldc: 16 }, "store", "silu", bufs, GEMM_TILES, "f32", forms);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  op.encode(pass, 8, GEMM_TILES.t64x64);
  op.encode(pass, 8, GEMM_TILES.t128x64, 2);
  assert.throws(() => op.encode(pass, 8, GEMM_TILES.t128x64), /no unsplit pipeline for a 128x64 tile/);
  assert.throws(() => op.encode(pass, 8, GEMM_TILES.t64x64, 2), /no split pipeline for a 64x64 tile/);
  pass.end();
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
  op.destroy();
  for (const b of Object.values(bufs)) b.destroy();
});

test("gemm store: every tile shape, ragged M and N, K not a multiple of the K step", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  // tiles whose loads do not divide evenly over their threads, as the wide ones' A tile (the
  // quantized weights' one needs more invocations than SwiftShader runs: tested where the device
  // runs it): A uneven (64x88: 256 vec4s over 176 threads), A and W uneven (48x24: 192 and 96 over 72)
  const uneven = { u64x88: { BM: 64, BN: 88, BK: 16, TM: 8, TN: 4 }, u48x24: { BM: 48, BN: 24, BK: 16, TM: 4, TN: 4 } };
  const wide = { wide: wideTileFor(ctx.device.limits, "f32"), wideQuantized: wideTileFor(ctx.device.limits, "q8") };
  for (const [name, tile] of Object.entries({ ...GEMM_TILES, ...uneven, square: SQUARE_TILE, ...wide }).filter(([, t]) => t))
    for (const [M, N, K] of [[1, 8, 16], [37, 100, 20], [130, 72, 96]]) {
      const lda = K + 4;
      const { got, ref } = await runGemm(ctx, { M, N, K, lda, epilogue: "store", tile, aOff: 8 });
      const e = relError(got, ref);
      assert.ok(e < 1e-6, `${name} M=${M} N=${N} K=${K}: rel error ${e}`);
    }
});

test("gemv (one row, no tile forced): store, add and glu epilogues, 64 and 32 lanes a row", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  assert.equal([44, 2056].map(gemvLanes), [64, 32]);
  for (const [N, K] of [[44, 16], [44, 100], [44, 1028], [2056, 1028]]) {
    let { got, ref } = await runGemm(ctx, { M: 1, N, K, lda: K, epilogue: "store", aOff: 4 });
    assert.ok(relError(got, ref) < 1e-6, `store N=${N} K=${K}: rel error ${relError(got, ref)}`);
    const C0 = randomArray(N, 5);
    ({ got, ref } = await runGemm(ctx, { M: 1, N, K, lda: K, epilogue: "add", C0 }));
    const sum = ref.map((x, i) => x + C0[i]);
    assert.ok(relError(got, sum) < 1e-6, `add N=${N} K=${K}: rel error ${relError(got, sum)}`);
    ({ got, ref } = await runGemm(ctx, { M: 1, N, K, lda: K, epilogue: "glu" }));
    const want = new Float64Array(N / 2);
    for (let c = 0; c < N; c += 4) for (let q = 0; q < 2; q++) want[c / 2 + q] = silu(ref[c + q]) * ref[c + 2 + q];
    assert.ok(relError(got, want) < 2e-6, `glu N=${N} K=${K}: rel error ${relError(got, want)}`);
  }
});

test("gemv with the norm applied in the kernel (decode's channel norm): rms and layernorm", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  for (const norm of ["rms", "layernorm"])
    for (const K of [16, 1028]) {
      let { got, ref } = await runGemm(ctx, { M: 1, N: 44, K, lda: K, epilogue: "store", aOff: 4, norm });
      assert.ok(relError(got, ref) < 2e-6, `${norm} store K=${K}: rel error ${relError(got, ref)}`);
      ({ got, ref } = await runGemm(ctx, { M: 1, N: 44, K, lda: K, epilogue: "glu", norm }));
      const want = new Float64Array(22);
      for (let c = 0; c < 44; c += 4) for (let q = 0; q < 2; q++) want[c / 2 + q] = silu(ref[c + q]) * ref[c + 2 + q];
      assert.ok(relError(got, want) < 4e-6, `${norm} glu K=${K}: rel error ${relError(got, want)}`);
    }
});

test("gemm add: accumulates into C (the residual)", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  const M = 65, N = 48, K = 32;
  const C0 = randomArray(M * N, 99);
  const { got, ref } = await runGemm(ctx, { M, N, K, lda: K, epilogue: "add", C0 });
  const want = ref.map((x, i) => x + C0[i]);
  assert.ok(relError(got, want) < 1e-6, `rel error ${relError(got, want)}`);
});

test("gemm split over K: the slices' sums add up to the product, C is left alone", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  for (const tile of [GEMM_TILES.t128x64, GEMM_TILES.t64x32, SQUARE_TILE])
    // K 200 in 4 slices of 64: the last slice gets 8; K 40 in 4: the last two slices are empty
    for (const [M, N, K, splits] of [[70, 48, 200, 4], [130, 72, 96, 2], [5, 16, 40, 4], [70, 48, 200, 3]]) {
      const C0 = randomArray(M * N, 41);
      const { got, ref, sliceSums, init } = await runGemm(ctx, { M, N, K, lda: K, epilogue: "add", C0, tile, splits });
      assert.equal(Array.from(got), Array.from(init), "C untouched");
      const bias = randomArray(N, 3 + N, 0.25);
      const sum = new Float64Array(M * N);
      for (let z = 0; z < splits; z++) for (let i = 0; i < M * N; i++) sum[i] += sliceSums[z * M * N + i];
      // the reference includes the bias, the slices do not (the norm adds it)
      const want = ref.map((x, i) => x - bias[i % N]);
      const e = relError(sum, want);
      assert.ok(e < 1e-6, `tile ${tile.BM}x${tile.BN} M=${M} N=${N} K=${K} splits=${splits}: rel error ${e}`);
    }
});

for (const [act, f] of [["silu", silu], ["gelu", gelu]])
  test(`gemm glu (${act}): interleaved l1/l2 columns give act(l1) * l2 at half width`, async () => {
    const ctx = await gpuOrSkip();
    if (!ctx) return;
    // (64x88: the wide tiles' column groups and uneven loads, with 8 x 4 and 16 x 4 a thread)
    for (const tile of [GEMM_TILES.t128x64, GEMM_TILES.t32x64, { BM: 64, BN: 88, BK: 16, TM: 8, TN: 4 }, { BM: 64, BN: 88, BK: 16, TM: 16, TN: 4 }]) {
      const M = 70, N = 136, K = 40;
      const { got, ref } = await runGemm(ctx, { M, N, K, lda: K, epilogue: "glu", act, tile });
      const want = new Float64Array(M * (N / 2));
      for (let m = 0; m < M; m++)
        for (let c = 0; c < N; c += 4)
          for (let q = 0; q < 2; q++) want[m * (N / 2) + c / 2 + q] = f(ref[m * N + c + q]) * ref[m * N + c + 2 + q];
      const e = relError(got, want);
      assert.ok(e < 2e-6, `${act} tile ${tile.BM}x${tile.BN}: rel error ${e}`);
    }
  });

test.run();
