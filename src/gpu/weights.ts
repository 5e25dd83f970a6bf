import type { MetalaConfig } from "../model/config.js";
import { EMBED, FINAL_NORM_BIAS, FINAL_NORM_WEIGHT, LM_HEAD, layerTensorName, type LayerTensor } from "../model/names.js";
import type { WeightSource } from "../model/source.js";
import { toF16 } from "./f16.js";
import type { WeightType } from "./gemm.js";
import { uploadF32 } from "./pipelines.js";
import { quantize } from "./quantize.js";

/** Rows lo .. lo+rows of a [rows, cols] matrix, uploaded as one buffer. */
export interface MatrixPart {
  buffer: GPUBuffer;
  lo: number;
  rows: number;
}

export interface GpuLayerWeights {
  /** q8 / q4: the per-group scales of wQkvg, wOut, w12, w3 (quantize.ts). */
  scales?: { qkvg: GPUBuffer; out: GPUBuffer; w12: GPUBuffer; w3: GPUBuffer };
  wQkvg: GPUBuffer; // [q; k_gate; v; g] rows: [2dk + 2d, d]
  bQkvg: GPUBuffer; // zeros, then g_proj.bias
  conv: GPUBuffer; // [d, 4]
  waug: GPUBuffer; // [dk]
  wOut: GPUBuffer; // [d, d]
  w12: GPUBuffer; // l1 and l2 rows interleaved two by two: [2 glu, d]
  b12: GPUBuffer; // their biases interleaved the same way (zeros without bias)
  w3: GPUBuffer; // [d, glu]
  b3: GPUBuffer; // [d]
  tokenNorm: { w: GPUBuffer; b: GPUBuffer };
  channelNorm: { w: GPUBuffer; b: GPUBuffer };
}

export interface GpuWeights {
  /** How the layers' projection matrices are stored; norms, biases, conv and aug_balance are f32. */
  wtype: WeightType;
  /** How the embedding and the head are stored: f16 with f16 weights, else f32 (not quantized). */
  tableType: "f32" | "f16";
  embed: MatrixPart[];
  head: MatrixPart[];
  finalNorm: { w: GPUBuffer; b: GPUBuffer };
  /** Zeros, long enough to be the bias of any projection without one. */
  zeroBias: GPUBuffer;
  layers: GpuLayerWeights[];
  /** Bytes of weights on the device. */
  bytes: number;
  destroy(): void;
}

/**
 * The order of the GLU weight rows the GEMM's gated epilogue expects: groups
 * of 4 output columns [l1 r, l1 r+1, l2 r, l2 r+1], so that one thread holds
 * both factors of each output.
 */
export function interleavePairs(a: Float32Array, b: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(2 * rows * cols);
  for (let r = 0; r < rows; r += 2)
    for (let q = 0; q < 2; q++) {
      out.set(a.subarray((r + q) * cols, (r + q + 1) * cols), (2 * r + q) * cols);
      out.set(b.subarray((r + q) * cols, (r + q + 1) * cols), (2 * r + 2 + q) * cols);
    }
  return out;
}

function uploadRaw(device: GPUDevice, data: Uint16Array | Uint32Array, label: string): GPUBuffer {
  const b = device.createBuffer({ size: Math.max(16, Math.ceil(data.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, mappedAtCreation: true, label });
  new Uint8Array(b.getMappedRange(), 0, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  b.unmap();
  return b;
}

/**
 * Reads each tensor from the source and uploads it (one tensor in host
 * memory at a time, plus the assembled fused matrices). Matrices larger than
 * one storage binding are split by rows. With `wtype` f16 the matrices are
 * rounded to f16 (half the memory and the decode bandwidth).
 */
export async function uploadWeights(device: GPUDevice, source: WeightSource, maxBinding: number, wtype: WeightType = "f32"): Promise<GpuWeights> {
  const c: MetalaConfig = source.config;
  const d = c.hiddenSize, dk = c.keyDim, glu = c.gluDim;
  const owned: GPUBuffer[] = [];
  let bytes = 0;
  const up = (a: Float32Array, label: string) => {
    const b = uploadF32(device, a, label);
    owned.push(b);
    bytes += a.byteLength;
    return b;
  };
  const upRaw = (data: Uint16Array | Uint32Array, label: string) => {
    const b = uploadRaw(device, data, label);
    owned.push(b);
    bytes += data.byteLength;
    return b;
  };
  const tableType = wtype === "f16" ? "f16" : "f32";
  /** The embedding or head, f16 or f32. */
  const upT = (a: Float32Array, label: string, what: string) => (tableType === "f16" ? upRaw(toF16(a, `${source.label}: ${what}`), label) : up(a, label));
  /** A projection matrix [rows, K] in the weight type; the scales go to `scales[key]` for q8 / q4. */
  const scalesOf: Record<string, GPUBuffer> = {};
  const upM = (a: Float32Array, rows: number, K: number, key: string, label: string, what: string) => {
    if (wtype === "f32") return up(a, label);
    if (wtype === "f16") return upRaw(toF16(a, `${source.label}: ${what}`), label);
    const q = quantize(a, rows, K, wtype);
    scalesOf[key] = up(q.scales, label + ".scales");
    return upRaw(q.data, label);
  };
  const zeros = (n: number, label: string) => up(new Float32Array(n), label);
  const ones = (n: number, label: string) => up(new Float32Array(n).fill(1), label);
  const splitRows = (m: Float32Array, rows: number, cols: number, label: string, tensor: string): MatrixPart[] => {
    const per = Math.max(1, Math.floor(maxBinding / (cols * (tableType === "f32" ? 4 : 2))));
    const parts: MatrixPart[] = [];
    for (let lo = 0; lo < rows; lo += per) {
      const n = Math.min(per, rows - lo);
      parts.push({ buffer: upT(m.subarray(lo * cols, (lo + n) * cols), `${label}[${lo}]`, `tensor ${tensor}, from row ${lo},`), lo, rows: n });
    }
    return parts;
  };
  const norm = async (wName: string, bName: string, label: string) =>
    c.normType === "layernorm"
      ? { w: up(await source.read(wName), label + ".w"), b: up(await source.read(bName), label + ".b") }
      : { w: ones(d, label + ".w"), b: zeros(d, label + ".b") };

  try {
    const layers: GpuLayerWeights[] = [];
    for (let l = 0; l < c.numLayers; l++) {
      const name = (t: LayerTensor) => layerTensorName(l, t);
      const read = (t: LayerTensor, dest?: Float32Array) => source.read(name(t), dest);
      const qkvg = new Float32Array((2 * dk + 2 * d) * d);
      await read("q_proj", qkvg.subarray(0, dk * d));
      await read("k_gate", qkvg.subarray(dk * d, 2 * dk * d));
      await read("v_proj", qkvg.subarray(2 * dk * d, (2 * dk + d) * d));
      await read("g_proj", qkvg.subarray((2 * dk + d) * d));
      const bq = new Float32Array(2 * dk + 2 * d);
      await read("g_proj_bias", bq.subarray(2 * dk + d));
      const l1 = await read("l1");
      const l2 = await read("l2");
      const b1 = c.bias ? await read("l1_bias") : new Float32Array(glu);
      const b2 = c.bias ? await read("l2_bias") : new Float32Array(glu);
      const np = 2 * dk + 2 * d;
      const wQkvg = upM(qkvg, np, d, "qkvg", `L${l}.qkvg`, `tensors ${(["q_proj", "k_gate", "v_proj", "g_proj"] as const).map(name).join(", ")} (together)`);
      const wOut = upM(await read("out_proj"), d, d, "out", `L${l}.out`, `tensor ${name("out_proj")}`);
      const w12 = upM(interleavePairs(l1, l2, glu, d), 2 * glu, d, "w12", `L${l}.w12`, `tensors ${name("l1")}, ${name("l2")} (rows interleaved in pairs)`);
      const w3 = upM(await read("l3"), d, glu, "w3", `L${l}.w3`, `tensor ${name("l3")}`);
      layers.push({
        scales: wtype === "q8" || wtype === "q4" ? { qkvg: scalesOf.qkvg, out: scalesOf.out, w12: scalesOf.w12, w3: scalesOf.w3 } : undefined,
        wQkvg,
        bQkvg: up(bq, `L${l}.bqkvg`),
        conv: up(await read("conv1d"), `L${l}.conv`),
        waug: up(await read("aug_balance"), `L${l}.aug`),
        wOut,
        w12,
        b12: up(interleavePairs(b1, b2, glu, 1), `L${l}.b12`),
        w3,
        b3: c.bias ? up(await read("l3_bias"), `L${l}.b3`) : zeros(d, `L${l}.b3`),
        tokenNorm: await norm(name("token_norm_weight"), name("token_norm_bias"), `L${l}.tn`),
        channelNorm: await norm(name("channel_norm_weight"), name("channel_norm_bias"), `L${l}.cn`),
      });
    }
    const embed = splitRows(await source.read(EMBED), c.vocabSize, d, "embed", EMBED);
    const head = source.tiedHead ? embed : splitRows(await source.read(LM_HEAD), c.vocabSize, d, "head", LM_HEAD);
    const finalNorm = await norm(FINAL_NORM_WEIGHT, FINAL_NORM_BIAS, "final");
    const zeroBias = zeros(Math.max(c.vocabSize, 2 * dk + 2 * d, 2 * glu), "zero bias");
    return { wtype, tableType, embed, head, finalNorm, zeroBias, layers, bytes, destroy: () => owned.forEach((b) => b.destroy()) };
  } catch (e) {
    owned.forEach((b) => b.destroy());
    throw e;
  }
}
