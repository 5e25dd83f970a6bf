import type { GluActivation } from "../model/config.js";
import { openDevice, type GpuContext } from "./device.js";
import { devicePlan, GEMM_TILES, GemmOp, MAX_SPLITS, RESIDUAL_SPLIT_COUNTS, SPLIT_COUNTS, chooseProduct, chooseResidual, planTiles, type GemmEpilogue, type GemmTile } from "./gemm.js";
import { GEMM_FAMILIES, OP_FAMILIES, type GpuForward, type OpFamily } from "./forward.js";
import { Pipelines, pipelinesFor, storageBuffer, uniformU32, uploadF32 } from "./pipelines.js";
import type { ShaderDefs } from "./shaders.js";
import { readF32 } from "./readback.js";
import { warmUp } from "../runtime/warm-up.js";

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
  /** Slices of K (the kernel after the product adds them up: not timed here). */
  splits: number;
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
  wtype: "f32" | "f16" = "f32",
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
      W: storageBuffer(device, N * K * (wtype === "f16" ? 2 : 4)),
      bias: storageBuffer(device, N * 4),
      C: storageBuffer(device, M * outCols * 4),
      partials: storageBuffer(device, MAX_SPLITS * M * N * 4),
    };
    // what the forward pass picks from these tiles (the residual-adding products, "add", have their own rule)
    const plan = devicePlan(device.limits, wtype, { tiles });
    const all = planTiles(plan);
    const op = await GemmOp.create(p, { N, K, lda: K, ldc: outCols }, epilogue, act, bufs, all, wtype);
    const { tile: chosen, splits: chosenSplits } = (epilogue === "add" ? chooseResidual : chooseProduct)(M, N, K, plan);
    const reps = Math.max(3, Math.min(200, Math.round(2e11 / (2 * M * N * K))));
    for (const splits of epilogue === "add" ? RESIDUAL_SPLIT_COUNTS : SPLIT_COUNTS)
      for (const [name, tile] of Object.entries(all)) {
        const s = await timeGpu(device, (pass) => op.encode(pass, M, tile, splits), reps);
        rowsOut.push({ M, N, K, epilogue, tile: name, splits, chosen: tile === chosen && splits === chosenSplits, ms: s * 1e3, tflops: (2 * M * N * K) / s / 1e12 });
      }
    op.destroy();
    for (const b of Object.values(bufs)) b.destroy();
  }
  return rowsOut;
}

export interface PrefillBenchRow {
  T: number;
  seconds: number;
  tokensPerS: number;
  /** The median call's rate (tokensPerS is the best call's). */
  medianTokensPerS: number;
  /** 2 x parameters x tokens / time (the "effective" figure). */
  effectiveTflops: number;
  /** Share of a forward pass spent in the chunked GLA and in the projection GEMMs (each timed alone). */
  glaShare: number;
  gemmShare: number;
  /** GPU time of one forward pass (recorded twice in one submission, halved): no read-back, no host work. */
  gpuSeconds: number;
  /** One forward pass in its own submission, waited for (no read-back). */
  submitSeconds: number;
  glaKernelsMs: number[];
  /** Activation + state buffers on the GPU (weights excluded) and the process's resident memory after the runs, MB. */
  memory: { gpuBufferMb: number; rssMb: number };
  /** The last submission of the last timed prefill: ms recording, waiting, reading back. */
  lastCall: object;
  /** GPU time of each op family alone (all layers), ms. */
  opsMs: Record<string, number>;
  /** Dispatches in one forward pass, and what they cost before any work (dispatches x the floor measured in this run), ms. */
  dispatches: number;
  dispatchFloorMs: number;
}

/** Dispatches a "last"-logits prefill of T tokens records, chunk by chunk (counted on a recording stand-in, nothing submitted). */
function countDispatches(f: GpuForward, T: number): number {
  let n = 0;
  const counter = { setPipeline() {}, setBindGroup() {}, dispatchWorkgroups: () => void n++ };
  for (let i = 0; i < T; i += f.maxTokens) f.encode(counter as unknown as GPUComputePassEncoder, Math.min(f.maxTokens, T - i), i + f.maxTokens >= T ? 1 : 0);
  return n;
}

/** GPU time of the cheapest dependent dispatch (shaders/dispatch-floor.wgsl), in ms: the best of 5 passes of 256. */
async function dispatchFloorMs(device: GPUDevice): Promise<number> {
  const p = new Pipelines(device);
  const pipeline = await p.pipeline({ files: ["dispatch-floor.wgsl"], defs: {}, bindings: ["rw"] });
  const b = storageBuffer(device, 256, "dispatch floor");
  const bg = p.bindGroup(["rw"], [b]);
  const n = 256;
  let best = Infinity;
  for (let r = 0; r < 5; r++)
    best = Math.min(best, await timeGpu(device, (pass) => {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bg);
      for (let i = 0; i < n; i++) pass.dispatchWorkgroups(1);
    }, 1));
  b.destroy();
  return (best * 1e3) / n;
}

function randomTokens(n: number, vocab: number, seed: number): number[] {
  let s = seed >>> 0 || 1;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % vocab;
  });
}

/** What the benchmark reads inside a webgpu engine and its sessions (engine.ts). */
function internals(engine: import("../engine.js").Engine) {
  const e = engine as unknown as { ctx: GpuContext; forward(): Promise<GpuForward> };
  return { device: e.ctx.device, forward: e.forward() };
}
const lastCallOf = (s: import("../engine.js").EngineSession) => ({ ...(s as unknown as { lastCall: object }).lastCall });

/**
 * Prefill speed of a webgpu engine at each prompt length (logits of the last
 * position only, as in generation): the best and the median of `calls`
 * calls after a second of warm-up at the same length; and decode speed over
 * `decodeSteps` steps.
 */
export async function benchWebGpuPrefill(engine: import("../engine.js").Engine, lengths: number[], params: number, decodeSteps = 64, calls = 3) {
  const vocab = engine.config.vocabSize;
  const { device } = internals(engine);
  const rows: PrefillBenchRow[] = [];
  const floorMs = await dispatchFloorMs(device);
  for (const T of lengths) {
    const tokens = randomTokens(T, vocab, T);
    const s = engine.createSession();
    await warmUp(() => s.prefill(tokens, "last"));
    const times: number[] = [];
    // each call continues the sequence (no reset): its state read-back lands and is copied out on the
    // host while the next call runs, as in a long prompt's chunks or a conversation's turns
    for (let rep = 0; rep < calls; rep++) {
      const t0 = performance.now();
      await s.prefill(tokens, "last");
      times.push((performance.now() - t0) / 1000);
    }
    times.sort((a, b) => a - b);
    const seconds = times[0];
    const medianTokensPerS = T / times[Math.floor(times.length / 2)];
    const lastCall = lastCallOf(s);
    const f = await internals(engine).forward;
    const share = await opShares(device, f, Math.min(T, f.maxTokens), 1);
    const memory = { gpuBufferMb: f.bufferBytes / 1e6, rssMb: typeof process === "undefined" ? NaN : process.memoryUsage().rss / 1e6 };
    const dispatches = countDispatches(f, T);
    rows.push({ T, seconds, tokensPerS: T / seconds, medianTokensPerS, effectiveTflops: (2 * params * T) / seconds / 1e12, ...share, lastCall, memory, dispatches, dispatchFloorMs: dispatches * floorMs });
    s.dispose();
  }
  const s = engine.createSession();
  await s.prefill(randomTokens(64, vocab, 1), "last");
  for (let i = 0; i < 4; i++) await s.step(i);
  const t0 = performance.now();
  for (let i = 0; i < decodeSteps; i++) await s.step((i * 7919) % vocab);
  const decodeTokensPerS = decodeSteps / ((performance.now() - t0) / 1000);
  // where a step's time goes: the GPU work alone, and a submission + read-back with no work
  const decodeGpu = await opShares(device, await internals(engine).forward, 1, 1, 20);
  const staging = device.createBuffer({ size: 16, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
  let roundTripMs = Infinity;
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    device.queue.submit([device.createCommandEncoder().finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    staging.unmap();
    roundTripMs = Math.min(roundTripMs, performance.now() - t);
  }
  staging.destroy();
  s.dispose();
  const decode = { stepMs: 1e3 / decodeTokensPerS, gpuMs: decodeGpu.gpuSeconds * 1e3, opsMs: decodeGpu.opsMs, emptyRoundTripMs: roundTripMs, lastCall: lastCallOf(s), readBack: await readBackSpeed(device) };
  return { prefill: rows, decodeTokensPerS, decode };
}

/**
 * Times one submission of the whole forward (and of each op family alone,
 * on the engine's buffers) at T tokens with `headRows` rows of logits.
 */
async function opShares(device: GPUDevice, f: GpuForward, T: number, headRows: number, reps = 2) {
  const u = f.uniforms(T, headRows);
  device.queue.writeBuffer(f.buffers.dims, 0, u.dims);
  device.queue.writeBuffer(f.buffers.headDims, 0, u.headDims);
  // the best of 3 submissions: one run's figure can carry a spike of the shared GPU (once a family
  // timed 4x its kernels' sum), which would show as a share far off the rest
  const best = async (run: () => Promise<number>) => Math.min(await run(), await run(), await run());
  const time = (only?: ReadonlySet<OpFamily>) => best(() => timeGpu(device, (pass) => f.encode(pass, T, headRows, only), reps));
  const whole = await time();
  // one forward per submission, waited for: what a prefill call pays before its read-back
  const submitted = await timeGpu(device, (pass) => f.encode(pass, T, headRows), 1);
  const opsMs: Record<string, number> = {};
  for (const fam of OP_FAMILIES) opsMs[fam] = 1e3 * (await time(new Set([fam])));
  // each GLA kernel alone, all layers, in ms: decay-key, chunk-state, scan, output
  const glaKernelsMs: number[] = [];
  if (T > 1) {
    const nC = Math.ceil(T / 64);
    for (let k = 0; k < f.layers[0].gla.kernels(T, nC).length; k++)
      glaKernelsMs.push(1e3 * (await best(() => timeGpu(device, (pass) => f.layers.forEach((l) => l.gla.kernels(T, nC)[k].encode(pass, T, nC)), reps))));
  }
  return { glaShare: opsMs.gla / 1e3 / whole, gemmShare: (await time(GEMM_FAMILIES)) / whole, gpuSeconds: whole, submitSeconds: submitted, opsMs, glaKernelsMs };
}

/** Time to copy n bytes from a storage buffer to a mappable one, map it, and copy its contents out, in ms (best of 5). */
async function readBackSpeed(device: GPUDevice) {
  const out: Record<string, { mapMs: number; copyOutMs: number }> = {};
  for (const bytes of [128 << 10, 6 << 20]) {
    const src = storageBuffer(device, bytes, "read-back src");
    const dst = device.createBuffer({ size: bytes, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
    let mapMs = Infinity, copyOutMs = Infinity;
    for (let i = 0; i < 5; i++) {
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(src, 0, dst, 0, bytes);
      const t0 = performance.now();
      device.queue.submit([enc.finish()]);
      await dst.mapAsync(GPUMapMode.READ);
      const t1 = performance.now();
      new Float32Array(dst.getMappedRange().slice(0));
      const t2 = performance.now();
      dst.unmap();
      mapMs = Math.min(mapMs, t1 - t0);
      copyOutMs = Math.min(copyOutMs, t2 - t1);
    }
    src.destroy();
    dst.destroy();
    out[`${bytes >> 10}KiB`] = { mapMs, copyOutMs };
  }
  return out;
}

/**
 * Read bandwidth of the device's memory in GB/s: a 512 MB buffer (less
 * where the binding limit is lower) read by every multiprocessor; 64 MB on
 * a software adapter (host memory either way: past its caches, and the
 * probe takes seconds instead of tens of seconds there).
 */
export async function probeGpuBandwidth(ctx: GpuContext): Promise<number> {
  const { device } = ctx;
  const software = ctx.info.isFallbackAdapter === true;
  const bytes = Math.min((software ? 64 : 512) << 20, Math.floor(ctx.info.limits!.maxStorageBufferBindingSize / 16) * 16);
  const threads = 256 * 1024;
  const src = storageBuffer(device, bytes, "bandwidth src");
  const dst = storageBuffer(device, threads * 4, "bandwidth dst");
  try {
    return bytes / (await timeProbe(device, "bandwidth.wgsl", { THREADS: threads }, [src, dst], threads / 256, 10)) / 1e9;
  } finally {
    src.destroy();
    dst.destroy();
  }
}

/** Seconds of one dispatch of a probe kernel (one read and one read-write binding) over `workgroups`, timeGpu over `reps`. */
async function timeProbe(device: GPUDevice, file: string, defs: ShaderDefs, buffers: [GPUBuffer, GPUBuffer], workgroups: number, reps: number): Promise<number> {
  const p = pipelinesFor(device);
  const pipeline = await p.pipeline({ files: [file], defs, bindings: ["read", "rw"] });
  const bg = p.bindGroup(["read", "rw"], buffers);
  return timeGpu(
    device,
    (pass) => {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(workgroups);
    },
    reps,
  );
}

/**
 * Runs shaders/fma-peak.wgsl on `workgroups` workgroups of 256 threads,
 * ITER = `iter` (m = c = 1), and returns the seconds of one dispatch
 * (timeGpu over `reps`) and every thread's sum (4 * 28 + 32 * iter where
 * the chains ran: the test's check that the timed work was done).
 */
export async function runFmaPeak(ctx: GpuContext, workgroups: number, iter: number, reps: number): Promise<{ seconds: number; macs: number; sums: Float32Array }> {
  const { device } = ctx;
  const threads = workgroups * 256;
  const mc = uploadF32(device, new Float32Array(8).fill(1), "fma-peak m, c");
  const dst = storageBuffer(device, threads * 4, "fma-peak sums");
  try {
    const seconds = await timeProbe(device, "fma-peak.wgsl", { ITER: iter }, [mc, dst], workgroups, reps);
    return { seconds, macs: threads * iter * 32, sums: await readF32(device, dst, threads) };
  } finally {
    mc.destroy();
    dst.destroy();
  }
}

/**
 * Peak rate of the device's f32 multiply-adds in GMAC/s (the prefill's
 * compute limit: its products are f32 FMAs): 512K threads of 8 vec4 FMA
 * chains, 16K steps each (275 GMAC, ~10 ms on an H200); a software adapter
 * gets 4K threads of 1K steps.
 */
export async function probeGpuCompute(ctx: GpuContext): Promise<number> {
  const software = ctx.info.isFallbackAdapter === true;
  const r = await runFmaPeak(ctx, software ? 16 : 2048, software ? 1024 : 16384, software ? 1 : 3);
  return r.macs / r.seconds / 1e9;
}
