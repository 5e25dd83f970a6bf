import { test } from "uvu";
import * as assert from "uvu/assert";
import { gpuOrSkip, randomArray, relError } from "./gpu-support.mjs";

const { Pipelines, uploadF32, uniformU32, storageBuffer } = await import("../dist/gpu/pipelines.js");
const { GemmOp, GEMM_TILES } = await import("../dist/gpu/gemm.js");
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
async function runGemm(ctx, { M, N, K, lda, epilogue, act = "silu", tile, C0, aOff = 0 }) {
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
  const op = await GemmOp.create(p, { N, K, lda, ldc: outCols, aOff }, epilogue, act, bufs);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  op.encode(pass, M, tile);
  pass.end();
  device.queue.submit([enc.finish()]);
  const got = await readF32(device, bufs.C, M * outCols);
  const ref = refGemm(A.subarray(aOff), W, bias, M, N, K, lda);
  for (const b of Object.values(bufs)) b.destroy();
  op.destroy();
  return { got, ref, init };
}

test("gemm store: every tile shape, ragged M and N, K not a multiple of the K step", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  for (const [name, tile] of Object.entries(GEMM_TILES))
    for (const [M, N, K] of [[1, 8, 16], [37, 100, 20], [130, 72, 96]]) {
      const lda = K + 4;
      const { got, ref } = await runGemm(ctx, { M, N, K, lda, epilogue: "store", tile, aOff: 8 });
      const e = relError(got, ref);
      assert.ok(e < 1e-6, `${name} M=${M} N=${N} K=${K}: rel error ${e}`);
    }
});

test("gemv (one row, no tile forced): store, add and glu epilogues", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  for (const K of [16, 100, 1028]) {
    const N = 44;
    let { got, ref } = await runGemm(ctx, { M: 1, N, K, lda: K, epilogue: "store", aOff: 4 });
    assert.ok(relError(got, ref) < 1e-6, `store K=${K}: rel error ${relError(got, ref)}`);
    const C0 = randomArray(N, 5);
    ({ got, ref } = await runGemm(ctx, { M: 1, N, K, lda: K, epilogue: "add", C0 }));
    const sum = ref.map((x, i) => x + C0[i]);
    assert.ok(relError(got, sum) < 1e-6, `add K=${K}: rel error ${relError(got, sum)}`);
    ({ got, ref } = await runGemm(ctx, { M: 1, N, K, lda: K, epilogue: "glu" }));
    const want = new Float64Array(N / 2);
    for (let c = 0; c < N; c += 4) for (let q = 0; q < 2; q++) want[c / 2 + q] = silu(ref[c + q]) * ref[c + 2 + q];
    assert.ok(relError(got, want) < 2e-6, `glu K=${K}: rel error ${relError(got, want)}`);
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

for (const [act, f] of [["silu", silu], ["gelu", gelu]])
  test(`gemm glu (${act}): interleaved l1/l2 columns give act(l1) * l2 at half width`, async () => {
    const ctx = await gpuOrSkip();
    if (!ctx) return;
    for (const tile of [GEMM_TILES.t128x64, GEMM_TILES.t32x64]) {
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
