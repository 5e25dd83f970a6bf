import type { GluActivation } from "../model/config.js";
import { openDevice, type GpuContext } from "./device.js";
import { GEMM_TILES, GemmOp, chooseTile, type GemmEpilogue, type GemmTile } from "./gemm.js";
import { Pipelines, storageBuffer, uniformU32 } from "./pipelines.js";

/** Wall time of `reps` recordings of `encode` in one pass and one submission, after one warm-up submission. */
export async function timeGpu(device: GPUDevice, encode: (pass: GPUComputePassEncoder) => void, reps: number): Promise<number> {
  const run = async (n: number) => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (let i = 0; i < n; i++) encode(pass);
    pass.end();
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / 1000;
  };
  await run(1);
  return (await run(reps)) / reps;
}

export interface GemmBenchRow {
  M: number;
  N: number;
  K: number;
  epilogue: GemmEpilogue;
  tile: string;
  chosen: boolean;
  ms: number;
  tflops: number;
}

/**
 * TFLOP/s of the projection GEMM alone, for each tile variant on the given
 * shapes (the flop count is 2*M*N*K; weights and activations are zeros, the
 * speed does not depend on the values).
 */
export async function benchGemm(
  shapes: { M: number; N: number; K: number; epilogue?: GemmEpilogue }[],
  ctx?: GpuContext,
  act: GluActivation = "silu",
  tiles: Record<string, GemmTile> = GEMM_TILES,
): Promise<GemmBenchRow[]> {
  ctx ??= await openDevice();
  const { device } = ctx;
  const p = new Pipelines(device);
  const rowsOut: GemmBenchRow[] = [];
  for (const { M, N, K, epilogue = "store" } of shapes) {
    const outCols = epilogue === "glu" ? N / 2 : N;
    const bufs = {
      rows: uniformU32(device, [M]),
      A: storageBuffer(device, M * K * 4),
      W: storageBuffer(device, N * K * 4),
      bias: storageBuffer(device, N * 4),
      C: storageBuffer(device, M * outCols * 4),
    };
    const op = await GemmOp.create(p, { N, K, lda: K, ldc: outCols }, epilogue, act, bufs, tiles);
    const chosen = chooseTile(M, N);
    const reps = Math.max(3, Math.min(200, Math.round(2e11 / (2 * M * N * K))));
    for (const [name, tile] of Object.entries(tiles)) {
      const s = await timeGpu(device, (pass) => op.encode(pass, M, tile), reps);
      rowsOut.push({ M, N, K, epilogue, tile: name, chosen: tile === chosen, ms: s * 1e3, tflops: (2 * M * N * K) / s / 1e12 });
    }
    op.destroy();
    for (const b of Object.values(bufs)) b.destroy();
  }
  return rowsOut;
}
