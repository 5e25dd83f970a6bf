/**
 * The CPU engine's memory plan for the weights, and their load. Matrices
 * that read the same input are fused by rows (q | k_gate | v | g, and l1 |
 * l2) so that one product, one thread hand-off and one pass over the input
 * serve them all. Everything is placed once, at load, by a bump allocator;
 * tensors stream in one at a time and are converted on the way in.
 */
import { MetalaError } from "../errors.js";
import type { MetalaConfig } from "../model/config.js";
import { f16RangeError } from "../model/dtype.js";
import { EMBED, FINAL_NORM_BIAS, FINAL_NORM_WEIGHT, LM_HEAD, layerTensorName, type LayerTensor } from "../model/names.js";
import type { WeightSource } from "../model/source.js";
import { FMT, type Kernels, type WeightDType } from "./kernels.js";
import { matrixBytes, rowBytes } from "./layout.js";
import type { ThreadPool } from "./pool.js";

/** A stored weight matrix: `rows` rows of `cols` inputs in layout `dtype`. */
export interface Matrix {
  dtype: WeightDType;
  fmt: number;
  ptr: number;
  rows: number;
  cols: number;
  bytes: number;
}

/** f32 vectors of a norm; null for the weightless RMS norm. */
export type NormPtrs = { weight: number; bias: number } | null;

export interface LayerPlan {
  wx: Matrix; // q_proj | k_gate | v_proj | g_proj: [2 dk + 2 d, d]
  gBias: number;
  wo: Matrix;
  w12: Matrix; // l1 | l2: [2 glu, d]
  b12: number; // 0 when bias is false
  w3: Matrix;
  b3: number;
  conv: number; // [d, 4]
  aug: number; // [dk]
  tokenNorm: NormPtrs;
  channelNorm: NormPtrs;
}

export interface WeightPlan {
  embed: Matrix;
  head: Matrix; // the embedding itself when tied
  layers: LayerPlan[];
  finalNorm: NormPtrs;
  start: number;
  end: number;
  /** Bytes one decode step reads: every layer matrix and vector, the head, one embedding row. */
  bytesPerToken: number;
}

/** Bump allocator over the engine's linear memory; 64-byte alignment keeps every row start cache-line aligned. */
export class Arena {
  constructor(public top: number) {}
  alloc(bytes: number, align = 64): number {
    this.top = Math.ceil(this.top / align) * align;
    const p = this.top;
    this.top += bytes;
    return p;
  }
}

/** Why a config cannot run on this engine, or null. */
export function unsupportedReason(c: MetalaConfig): string | null {
  if (c.hiddenSize % 32 !== 0) return `decoder_embed_dim ${c.hiddenSize} is not a multiple of 32`;
  if (c.gluDim % 32 !== 0) return `glu_dim ${c.gluDim} is not a multiple of 32`;
  if (c.headValueDim % 4 !== 0) return `head value dim ${c.headValueDim} is not a multiple of 4`;
  return null;
}

function matrix(arena: Arena, dtype: WeightDType, rows: number, cols: number): Matrix {
  const bytes = matrixBytes(dtype, rows, cols);
  return { dtype, fmt: FMT[dtype], ptr: arena.alloc(bytes), rows, cols, bytes };
}

export function planWeights(c: MetalaConfig, tiedHead: boolean, dtype: WeightDType, arena: Arena): WeightPlan {
  const d = c.hiddenSize;
  const dk = c.keyDim;
  const ln = c.normType === "layernorm";
  const start = arena.top;
  const vec = (n: number) => arena.alloc(4 * n);
  const norm = (): NormPtrs => (ln ? { weight: vec(d), bias: vec(d) } : null);
  // embedding and head first: their f32 staging can then sit in the still empty layer region above them
  const embed = matrix(arena, dtype, c.vocabSize, d);
  const head = tiedHead ? embed : matrix(arena, dtype, c.vocabSize, d);
  const layers: LayerPlan[] = [];
  for (let i = 0; i < c.numLayers; i++)
    layers.push({
      tokenNorm: norm(),
      wx: matrix(arena, dtype, 2 * dk + 2 * d, d),
      gBias: vec(d),
      conv: vec(4 * d),
      aug: vec(dk),
      wo: matrix(arena, dtype, d, d),
      channelNorm: norm(),
      w12: matrix(arena, dtype, 2 * c.gluDim, d),
      b12: c.bias ? vec(2 * c.gluDim) : 0,
      w3: matrix(arena, dtype, d, c.gluDim),
      b3: c.bias ? vec(d) : 0,
    });
  const finalNorm = norm();
  const layerBytes = layers.reduce((s, l) => s + l.wx.bytes + l.wo.bytes + l.w12.bytes + l.w3.bytes, 0);
  const perLayerVectors = d + 4 * d + dk + (c.bias ? 2 * c.gluDim + d : 0) + (ln ? 4 * d : 0);
  const vectors = 4 * (c.numLayers * perLayerVectors + (ln ? 2 * d : 0));
  return { embed, head, layers, finalNorm, start, end: arena.top, bytesPerToken: layerBytes + vectors + head.bytes + rowBytes(dtype, d) };
}

/** One tensor's rows inside a (possibly fused) matrix, in load order. */
interface Piece {
  name: string;
  m: Matrix;
  rowOffset: number;
  rows: number;
}

function matrixPieces(c: MetalaConfig, plan: WeightPlan): Piece[] {
  const d = c.hiddenSize;
  const dk = c.keyDim;
  const pieces: Piece[] = [{ name: EMBED, m: plan.embed, rowOffset: 0, rows: c.vocabSize }];
  if (plan.head !== plan.embed) pieces.push({ name: LM_HEAD, m: plan.head, rowOffset: 0, rows: c.vocabSize });
  plan.layers.forEach((L, i) => {
    const t = (x: LayerTensor) => layerTensorName(i, x);
    pieces.push(
      { name: t("q_proj"), m: L.wx, rowOffset: 0, rows: dk },
      { name: t("k_gate"), m: L.wx, rowOffset: dk, rows: dk },
      { name: t("v_proj"), m: L.wx, rowOffset: 2 * dk, rows: d },
      { name: t("g_proj"), m: L.wx, rowOffset: 2 * dk + d, rows: d },
      { name: t("out_proj"), m: L.wo, rowOffset: 0, rows: d },
      { name: t("l1"), m: L.w12, rowOffset: 0, rows: c.gluDim },
      { name: t("l2"), m: L.w12, rowOffset: c.gluDim, rows: c.gluDim },
      { name: t("l3"), m: L.w3, rowOffset: 0, rows: d },
    );
  });
  return pieces;
}

// Where a piece's f32 rows are staged before conversion: the top of the
// weight region while it is still unwritten above the piece (the big
// embedding and head come first, so they always fit there in a real model),
// otherwise the separate staging buffer.
function topStaging(plan: WeightPlan, p: Piece): number | null {
  const destEnd = p.m.ptr + (p.rowOffset + p.rows) * rowBytes(p.m.dtype, p.m.cols);
  const at = Math.floor((plan.end - p.rows * p.m.cols * 4) / 64) * 64;
  return at >= destEnd ? at : null;
}

/** Bytes of the staging buffer the load needs beside the weight region (0 for f32 weights, read in place). */
export function stagingBytes(c: MetalaConfig, plan: WeightPlan): number {
  let need = 0;
  for (const p of matrixPieces(c, plan)) if (p.m.dtype !== "f32" && topStaging(plan, p) === null) need = Math.max(need, p.rows * p.m.cols * 4);
  return need;
}

/**
 * Reads every tensor of `source` into the planned places of `buf`. f32
 * weights are read in place; the others are read as f32 into a staging area
 * in the same memory and converted by the quantizeRows kernel on all
 * threads, so that no tensor ever exists twice outside the wasm memory.
 */
export async function loadWeights(source: WeightSource, plan: WeightPlan, buf: ArrayBufferLike, kernels: Kernels, pool: ThreadPool, staging: number): Promise<void> {
  const c = source.config;
  const checkShape = (name: string, shape: number[]) => {
    if (!source.has(name)) throw new MetalaError("weights", `${source.label}: tensor ${name} is missing`);
    const got = source.shape(name);
    if (got.length !== shape.length || got.some((v, i) => v !== shape[i]))
      throw new MetalaError("weights", `${source.label}: tensor ${name} has shape [${got.join(", ")}], expected [${shape.join(", ")}]`);
  };
  const vectorInto = async (name: string, ptr: number, shape: number[]) => {
    checkShape(name, shape);
    await source.read(name, new Float32Array(buf, ptr, shape.reduce((a, b) => a * b, 1)));
  };
  const normInto = async (n: NormPtrs, weight: string, bias: string) => {
    if (!n) return;
    await vectorInto(weight, n.weight, [c.hiddenSize]);
    await vectorInto(bias, n.bias, [c.hiddenSize]);
  };

  for (const p of matrixPieces(c, plan)) {
    checkShape(p.name, [p.rows, p.m.cols]);
    const dest = p.m.ptr + p.rowOffset * rowBytes(p.m.dtype, p.m.cols);
    if (p.m.dtype === "f32") {
      await source.read(p.name, new Float32Array(buf, dest, p.rows * p.m.cols));
      continue;
    }
    const at = topStaging(plan, p) ?? staging;
    const staged = await source.read(p.name, new Float32Array(buf, at, p.rows * p.m.cols));
    const bad = p.m.dtype === "f16" ? kernels.firstNonF16(at, staged.length) : -1;
    if (bad >= 0) throw f16RangeError(`${source.label}: tensor ${p.name}`, staged[bad], bad);
    pool.run("quantizeRows", p.rows, 1, [p.m.fmt, at, dest, p.m.cols]);
  }

  const d = c.hiddenSize;
  const glu = c.gluDim;
  for (let i = 0; i < plan.layers.length; i++) {
    const L = plan.layers[i];
    const t = (x: LayerTensor) => layerTensorName(i, x);
    await normInto(L.tokenNorm, t("token_norm_weight"), t("token_norm_bias"));
    await vectorInto(t("g_proj_bias"), L.gBias, [d]);
    await vectorInto(t("conv1d"), L.conv, [d, 1, 4]);
    await vectorInto(t("aug_balance"), L.aug, [c.keyDim]);
    await normInto(L.channelNorm, t("channel_norm_weight"), t("channel_norm_bias"));
    if (L.b12) {
      await vectorInto(t("l1_bias"), L.b12, [glu]);
      await vectorInto(t("l2_bias"), L.b12 + 4 * glu, [glu]);
      await vectorInto(t("l3_bias"), L.b3, [d]);
    }
  }
  await normInto(plan.finalNorm, FINAL_NORM_WEIGHT, FINAL_NORM_BIAS);
}
