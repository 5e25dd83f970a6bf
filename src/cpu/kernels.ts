import { MetalaError } from "../errors.js";
import type { WasmFeatures } from "./features.js";

/** The exports of assembly/index.ts. Pointers are byte offsets into the shared memory. */
export interface Kernels {
  matVecF32(w: number, x: number, y: number, cols: number, accumulate: number, r0: number, r1: number, tid: number): void;
  matVecF16(w: number, x: number, y: number, cols: number, accumulate: number, r0: number, r1: number, tid: number): void;
  matVecQ8(w: number, xq: number, y: number, cols: number, accumulate: number, r0: number, r1: number, tid: number): void;
  matVecQ4(w: number, xq: number, y: number, cols: number, accumulate: number, r0: number, r1: number, tid: number): void;
  quantizeInput(fmt: number, x: number, q: number, cols: number): void;
  quantizeBlocks(fmt: number, x: number, q: number, cols: number, b0: number, b1: number): void;
  quantizeRows(fmt: number, src: number, dst: number, cols: number, r0: number, r1: number, tid: number): void;
  dequantizeRows(fmt: number, w: number, cols: number, r0: number, r1: number, dst: number): void;
  matMat(fmt: number, w: number, x: number, y: number, cols: number, ldy: number, T: number, accumulate: number, scratch: number, r0: number, r1: number, tid: number): void;
  prepareTokens(fmt: number, x: number, cols: number, T: number, dst: number): void;
  prepareTokenGroups(fmt: number, x: number, cols: number, T: number, dst: number, t0: number, t1: number, tid: number): void;
  preparedBytes(fmt: number, T: number, cols: number): number;
  matMatFormat(fmt: number): number;
  matMatScratchBytes(fmt: number, T: number, cols: number): number;
  prepareStrassenTokens(x: number, cols: number, T: number, dst: number, scratch: number, t0: number, t1: number, tid: number): void;
  matMatStrassen(fmt: number, w: number, rows: number, cols: number, x: number, y: number, ldy: number, T: number, accumulate: number, temps: number, scratch: number, r0: number, r1: number, tid: number): number;
  strassenTempsBytes(T: number): number;
  rmsNorm(x: number, y: number, n: number, T: number): void;
  rmsNormRows(x: number, y: number, n: number, qfmt: number, q: number, r0: number, r1: number, tid: number): void;
  layerNorm(x: number, y: number, weight: number, bias: number, n: number, eps: number, T: number): void;
  embed(fmt: number, table: number, d: number, token: number, scale: number, dst: number): void;
  shortConvStep(state: number, x: number, weight: number, out: number, d: number, T: number, qfmt: number, q: number, r0: number, r1: number, tid: number): void;
  rmsConvStep(state: number, x: number, weight: number, out: number, d: number, qfmt: number, q: number, r0: number, r1: number, tid: number): void;
  decayKey(a: number, ld: number, k: number, n: number, T: number): void;
  glaStep(S: number, q: number, alpha: number, v: number, ld: number, k: number, o: number, H: number, K: number, V: number, T: number, h0: number, h1: number, tid: number): void;
  tokenMixerHeads(S: number, P: number, ld: number, k: number, gBias: number, wAug: number, o: number, H: number, K: number, V: number, T: number, qfmt: number, q: number, h0: number, h1: number, tid: number): void;
  addBias(y: number, ld: number, b: number, n: number, T: number): void;
  glu(h: number, out: number, n: number, act: number, T: number, qfmt: number, q: number, r0: number, r1: number, tid: number): void;
  matVecGlu(fmt: number, w: number, x: number, h: number, cols: number, n: number, act: number, out: number, qfmt: number, q: number, r0: number, r1: number, tid: number): void;
  firstNonF16(src: number, n: number): number;
  touchLines(at: number, bytes: number): number;
  argmax(x: number, n: number): number;
  topK(x: number, n: number, k: number, idx: number, val: number): number;
  readBandwidth(base: number, blockBytes: number, out: number, r0: number, r1: number, tid: number): void;
  macPeak(fmt: number, w: number, x: number, rounds: number, out: number, r0: number, r1: number, tid: number): void;
  macPeakPerRound(fmt: number): number;
}

/** Kernels the thread pool splits by rows; their last three parameters are (r0, r1, tid). */
export const PARALLEL_KERNELS = ["matVecF32", "matVecF16", "matVecQ8", "matVecQ4", "matMat", "tokenMixerHeads", "shortConvStep", "rmsConvStep", "glu", "matVecGlu", "rmsNormRows", "quantizeRows", "readBandwidth", "prepareTokenGroups", "macPeak", "prepareStrassenTokens", "matMatStrassen"] as const;
export type ParallelKernel = (typeof PARALLEL_KERNELS)[number];

/** Storage layouts of assembly/formats.ts. */
export const FMT = { f32: 0, f16: 1, q8: 2, q4: 3 } as const;
export type WeightDType = keyof typeof FMT;

export type KernelBuild = "simd" | "relaxed-simd";

async function readWasm(file: string): Promise<Uint8Array | Response> {
  const url = new URL(`../wasm/${file}`, import.meta.url);
  const g = globalThis as { process?: { versions?: { node?: string } } };
  if (g.process?.versions?.node) {
    const { readFile } = await import("node:fs/promises");
    return readFile(url);
  }
  return fetch(url);
}

/** Compiles the best build this host validates: relaxed SIMD if available, else SIMD128; shared memory when threads are usable. */
export async function compileKernels(features: WasmFeatures, shared: boolean): Promise<{ module: WebAssembly.Module; build: KernelBuild }> {
  if (!features.simd) throw new MetalaError("device", "this WebAssembly host has no SIMD128 support, which the wasm engine needs");
  const build: KernelBuild = features.relaxedSimd ? "relaxed-simd" : "simd";
  const file = `metala-${build === "relaxed-simd" ? "relaxed" : "simd"}${shared ? "" : "-single"}.wasm`;
  let bytes: Uint8Array | Response;
  try {
    bytes = await readWasm(file);
  } catch (e) {
    throw new MetalaError("io", `cannot read the wasm kernels dist/wasm/${file} (run npm run build:wasm): ${(e as Error).message}`);
  }
  const module = bytes instanceof Uint8Array ? await WebAssembly.compile(bytes as BufferSource) : await WebAssembly.compileStreaming(bytes);
  return { module, build };
}

export function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): Kernels {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return instance.exports as unknown as Kernels;
}
