/**
 * The MetaLA forward pass on the wasm kernels: one decode step (mat-vec
 * products) and one prefill chunk (mat-mat products, each weight read once
 * per chunk, then the recurrent GLA token by token over heads in parallel).
 * Works on the engine's resident state slot; the session layer swaps states.
 */
import type { MetalaConfig } from "../model/config.js";
import type { Kernels, ParallelKernel } from "./kernels.js";
import type { ThreadPool } from "./pool.js";
import { inputBytes, rowBytes } from "./layout.js";
import { queueProduct } from "./matmat.js";
import { MATMAT_PATHS, matMatScratchBytes, preparedBytes, PREPARED, strassenTempsBytes, strassenTokensBytes } from "./matmat-layout.js";
import type { Arena, Matrix, NormPtrs, WeightPlan } from "./weights.js";

/** Y (+)= X m^T, Y rows ldy floats apart: a mat-vec for one token, a mat-mat for a chunk. */
type Product = (m: Matrix, x: number, y: number, ldy: number, accumulate: boolean) => void;

/** glu_act names -> assembly/ops.ts activation codes. */
const ACT: Record<string, number> = { silu: 0, swish: 0, gelu: 1, relu: 2, elu: 3, sigmoid: 4, leak: 5, "1+elu": 6, "2+elu": 7, sine: 8 };

const MATVEC: Record<string, ParallelKernel> = { f32: "matVecF32", f16: "matVecF16", q8: "matVecQ8", q4: "matVecQ4" };

/** What a pool thread waiting to run a tile of a product over m warms meanwhile (ThreadPool.queue): m's rows. */
const warmOf = (m: Matrix) => ({ at: m.ptr, rowBytes: rowBytes(m.dtype, m.cols) });

/**
 * Tokens per prefill chunk: enough that re-reading the weights per chunk
 * costs little next to the arithmetic. 256 rather than 128: each product's
 * panels are packed (and its weights read from memory) half as often, and
 * a layer's jobs and flushes are per chunk. f32 prefill of 512 tokens,
 * metala-380m, two threads, the two alternating in one process: 134.5
 * against 138.5 tok/s (8 runs each). 512 rather than 256: a 512-token
 * prompt is one chunk, each product's panels packed and its weights read
 * once (packing, mostly waiting for the weights from memory: 2.8% of the
 * threads' time at 512, ~5% at 256); 144.3 against 141.9 tok/s, the same
 * comparison (10 rounds; best 152 against 146; another 10: 135.2 against
 * 133.4). Costs 43.5 KB of activations per token (22 MB; q4's peak RSS in
 * `metala bench` 353 against 346 MB, limit 381); the logits have a buffer
 * of HEAD_BLOCK rows.
 */
export const CHUNK = 512;

/**
 * Rows of logits the head writes at a time when a chunk's every position
 * wants them ("all"): 8 MB at vocab 32000, where a whole chunk's would be
 * 64 MB; each block re-reads the head's weights (an f32 head of 131 MB:
 * ~4 ms against ~40 ms of its 64 rows' arithmetic).
 */
const HEAD_BLOCK = 64;

/** The largest of a mat-mat buffer's sizes over matMat's paths: the plan serves any dtype on either build. */
const largest = (size: (fmt: number) => number) => Math.max(...MATMAT_PATHS.map(size));

export interface Activations {
  // one token
  x: number;
  xn: number;
  c: number;
  p: number; // q | alpha | v | g
  k: number;
  o: number;
  h: number; // l1 | l2 outputs
  u: number;
  xq: number; // quantized input of a product
  xq2: number; // the same for the product after a job that reads xq (matVecGlu)
  logits: number;
  // one chunk of CHUNK tokens, same roles
  X: number;
  XN: number;
  C: number;
  P: number;
  K: number;
  O: number;
  Hh: number;
  U: number;
  LOGITS: number; // HEAD_BLOCK rows of logits
  tokens: number; // matMat's prepared tokens, or a Strassen product's operands
  scratch: number; // matMat's per-thread panels
  strassen: number; // a Strassen product's per-thread temps (src/cpu/matmat.ts)
  probe: number; // readBandwidth's per-thread output
}

export interface StateSlot {
  S: number; // [layers, H, K, V]
  conv: number; // [layers, 3, d]
  sBytesPerLayer: number;
  convBytesPerLayer: number;
}

export function planActivations(c: MetalaConfig, threads: number, arena: Arena): Activations {
  const d = c.hiddenSize;
  const p = 2 * c.keyDim + 2 * d;
  const f = (n: number) => arena.alloc(4 * n);
  const maxCols = Math.max(d, c.gluDim);
  // Buffers whose lives within a layer do not overlap share memory (a
  // chunk's jobs run in order): P (q|a|v|g product -> token mixer) with Hh
  // (l1|l2 product -> GLU); C (conv -> q|a|v|g product), O (token mixer ->
  // out product) and U (GLU -> l3 product). 10 MB fewer pages touched at
  // CHUNK 512, where q4's peak RSS is within ~20 MB of its limit.
  const PH = f(CHUNK * Math.max(p, 2 * c.gluDim));
  const COU = f(CHUNK * maxCols);
  return {
    x: f(d), xn: f(d), c: f(d), p: f(p), k: f(c.keyDim), o: f(d), h: f(2 * c.gluDim), u: f(c.gluDim),
    xq: arena.alloc(inputBytes(maxCols)), xq2: arena.alloc(inputBytes(maxCols)), logits: f(c.vocabSize),
    X: f(CHUNK * d), XN: f(CHUNK * d), C: COU, P: PH, K: f(CHUNK * c.keyDim), O: COU,
    Hh: PH, U: COU, LOGITS: f(HEAD_BLOCK * c.vocabSize),
    tokens: arena.alloc(Math.max(largest((f) => preparedBytes(f, CHUNK, maxCols)), strassenTokensBytes(CHUNK, maxCols))), scratch: arena.alloc(threads * largest((f) => matMatScratchBytes(f | PREPARED, CHUNK, maxCols))), probe: arena.alloc(threads * 16),
    strassen: arena.alloc(threads * strassenTempsBytes(CHUNK)),
  };
}

export function planState(c: MetalaConfig, arena: Arena): StateSlot {
  const sBytesPerLayer = 4 * c.numHeads * c.headKeyDim * c.headValueDim;
  const convBytesPerLayer = 4 * 3 * c.hiddenSize;
  return { S: arena.alloc(c.numLayers * sBytesPerLayer), conv: arena.alloc(c.numLayers * convBytesPerLayer), sBytesPerLayer, convBytesPerLayer };
}

export class Forward {
  private readonly act: number;
  private readonly embedScale: number;
  constructor(
    private readonly k: Kernels,
    private readonly pool: ThreadPool,
    private readonly c: MetalaConfig,
    private readonly w: WeightPlan,
    private readonly a: Activations,
    private readonly s: StateSlot,
  ) {
    this.act = ACT[c.gluAct];
    this.embedScale = c.noScaleEmbedding ? 1 : Math.fround(Math.sqrt(c.hiddenSize));
  }

  /** On this thread, after the jobs queued so far. */
  private norm(n: NormPtrs, x: number, y: number, T: number): void {
    this.pool.flush();
    if (n) this.k.layerNorm(x, y, n.weight, n.bias, this.c.hiddenSize, 1e-5, T);
    else this.k.rmsNorm(x, y, this.c.hiddenSize, T);
  }

  /** The vector whose quantization for a product of format xqFmt the kernel that wrote it left at xqAt (activations.xq or xq2); 0: none. */
  private xqOf = 0;
  private xqFmt = -1;
  private xqAt = 0;

  /**
   * [qfmt, q] arguments for a one-token kernel writing x, the input of
   * product m: the kernel then quantizes what it writes, in parallel, and
   * matVec skips quantizeInput (which ran on this thread alone while the
   * others waited: 6 us a product, 2% of a q8 decode step).
   */
  private fuseQuantize(m: Matrix, x: number, T: number, blocksFit: boolean, at = this.a.xq): [number, number] {
    this.xqOf = 0;
    if (T !== 1 || !blocksFit || (m.dtype !== "q8" && m.dtype !== "q4")) return [0, 0];
    this.xqOf = x;
    this.xqFmt = m.fmt;
    this.xqAt = at;
    return [m.fmt, at];
  }

  /**
   * y = norm(x) for one token, the input of product m: an RMS norm as a job
   * of the step's list, every thread normalizing (and quantizing, see
   * fuseQuantize) its share of the features from the whole row's factor,
   * instead of this thread alone between two jobs while the others wait.
   */
  private normOne(n: NormPtrs, x: number, y: number, m: Matrix): void {
    if (n) return this.norm(n, x, y, 1);
    const q = this.fuseQuantize(m, y, 1, true);
    this.pool.queue("rmsNormRows", this.c.hiddenSize, q[1] ? 32 : 4, [x, y, this.c.hiddenSize, ...q], 0, null);
  }

  /** What a one-token product m reads for its input x: x itself, or x quantized for it. */
  private productInput(m: Matrix, x: number): number {
    let input = x;
    if (m.dtype === "q8" || m.dtype === "q4") {
      // on this thread alone unless the kernel that wrote x did it (fuseQuantize)
      if (this.xqOf === x && this.xqFmt === m.fmt) input = this.xqAt;
      else {
        this.pool.flush();
        this.k.quantizeInput(m.fmt, x, this.a.xq, m.cols);
        input = this.a.xq;
      }
    }
    this.xqOf = 0;
    return input;
  }

  /** y (+)= m x for one token. */
  private matVec(m: Matrix, x: number, y: number, accumulate: boolean): void {
    const input = this.productInput(m, x);
    this.pool.queue(MATVEC[m.dtype], m.rows, 4, [m.ptr, input, y, m.cols, accumulate ? 1 : 0], this.tile(m), warmOf(m));
  }

  /**
   * h = m x (m the fused l1|l2, without bias) and out = act(h1) * h2 for
   * one token as one job (matVecGlu), its tiles half as many features as a
   * mat-vec tile has rows (multiples of 32, for the quantization of out
   * for product `next`, into xq2: the job reads xq), or one share per
   * thread as for a mat-vec.
   */
  private matVecGlu(m: Matrix, x: number, h: number, out: number, next: Matrix): void {
    const input = this.productInput(m, x);
    const q = this.fuseQuantize(next, out, 1, true, this.a.xq2);
    const n = m.rows / 2;
    const rows = this.tile(m);
    const tile = rows && Math.max(32, Math.floor(rows / 64) * 32);
    this.pool.queue("matVecGlu", n, q[1] ? 32 : 4, [m.fmt, m.ptr, input, h, m.cols, n, this.act, out, ...q], tile, warmOf(m));
  }

  /**
   * Rows per tile of a mat-vec over m (ThreadPool.queue's tile). f32, f16:
   * about 8 tiles per thread, so that a thread the OS holds back costs
   * little, each a multiple of 128 rows, so that the kernels' streams (8 f32
   * rows, 4 f16 rows side by side, matvec.ts) cover the tile with no
   * remainder. q8, q4: 0, one share per thread. Their kernels' four streams
   * each walk a quarter of the tile, and a tile cost about 2 us beyond its
   * bytes (four new streams for the hardware prefetcher; the first product
   * of a layer: 18 tiles 167 us of the two threads' time, 2 tiles 130 us).
   * q8 decode of metala-380m, variants alternating in one process, median
   * step: one share per thread 8.2 ms, 8 tiles per thread 10.7 (probe 43
   * GB/s; 11.2 against 12.2 in a busier hour, 16.0 against 20.7 beside a
   * busy loop), 4 tiles of a quarter 8.8, 2 of 3/8 then 2 of 1/8 8.6. f32
   * and f16 went the other way in one share per thread (f32 48.7 against
   * 38.7 ms, f16 28.2 against 25.5); q4 gained too (`metala bench` decode ÷
   * roofline 0.85 against 0.74, 3 runs each).
   */
  private tile(m: Matrix): number {
    if (m.dtype === "q8" || m.dtype === "q4") return 0;
    return Math.max(128, Math.ceil(m.rows / (8 * this.pool.threads) / 128) * 128);
  }

  /** Y (+)= X m^T for T tokens; Y rows are ldy floats apart. */
  private matMat(m: Matrix, X: number, Y: number, ldy: number, T: number, accumulate: boolean): void {
    queueProduct(this.pool, this.k, m, X, Y, ldy, T, accumulate, this.a);
  }

  /**
   * One layer for T tokens held in X ([T, d], updated in place), with the
   * products done by `product` (mat-vec for one token, mat-mat for a chunk).
   * The element-wise parts are split over the threads too: on two cores they
   * would otherwise be a tenth of a decode step.
   */
  private layer(l: number, T: number, X: number, XN: number, C: number, P: number, K: number, O: number, Hh: number, U: number, product: Product): void {
    this.tokenMix(l, T, X, XN, C, P, K, O, product);
    this.channelMix(l, T, X, XN, O, Hh, U, product);
  }

  /** A layer's first half: token norm, short conv, the q|a|v|g product and the token mixer (state updated, its output in O). */
  private tokenMix(l: number, T: number, X: number, XN: number, C: number, P: number, K: number, O: number, product: Product): void {
    const { c, w, pool } = this;
    const L = w.layers[l];
    const d = c.hiddenSize;
    const ld = 2 * c.keyDim + 2 * d;
    // one token's quantized products take their input quantized by the kernel before them, in tiles of whole 32-blocks
    const convQ = this.fuseQuantize(L.wx, C, T, true);
    const convState = this.s.conv + l * this.s.convBytesPerLayer;
    // one token, RMS norm: every thread normalizes the features it convolves, instead of the norm on this thread alone before the job (measured: 0.1-0.7% of a q8 decode step of metala-380m)
    if (T === 1 && !L.tokenNorm) pool.queue("rmsConvStep", d, convQ[1] ? 32 : 4, [convState, X, L.conv, C, d, ...convQ], 0, null);
    else {
      this.norm(L.tokenNorm, X, XN, T);
      pool.queue("shortConvStep", d, convQ[1] ? 32 : 4, [convState, XN, L.conv, C, d, T, ...convQ], 0, null);
    }
    product(L.wx, C, P, ld, false);
    const mixQ = this.fuseQuantize(L.wo, O, T, c.headValueDim % 32 === 0);
    const S = this.s.S + l * this.s.sBytesPerLayer;
    pool.queue("tokenMixerHeads", c.numHeads, 1, [S, P, ld, K, L.gBias, L.aug, O, c.numHeads, c.headKeyDim, c.headValueDim, T, ...mixQ], 0, { at: S, rowBytes: 4 * c.headKeyDim * c.headValueDim });
  }

  /** A layer's second half, on the token mixer's output O: out product into X, channel norm, GLU, down product into X. */
  private channelMix(l: number, T: number, X: number, XN: number, O: number, Hh: number, U: number, product: Product): void {
    const { c, w, pool } = this;
    const L = w.layers[l];
    const d = c.hiddenSize;
    const glu = c.gluDim;
    product(L.wo, O, X, d, true);
    if (T === 1) this.normOne(L.channelNorm, X, XN, L.w12);
    else this.norm(L.channelNorm, X, XN, T);
    if (T === 1 && !L.b12) this.matVecGlu(L.w12, XN, Hh, U, L.w3);
    else {
      product(L.w12, XN, Hh, 2 * glu, false);
      if (L.b12) this.addBias(Hh, 2 * glu, L.b12, 2 * glu, T);
      const gluQ = this.fuseQuantize(L.w3, U, T, true);
      pool.queue("glu", glu, gluQ[1] ? 32 : 4, [Hh, U, glu, this.act, T, ...gluQ], 0, null);
    }
    product(L.w3, U, X, d, true);
    if (L.b3) this.addBias(X, d, L.b3, d, T);
  }

  /** On this thread, after the jobs queued so far. */
  private addBias(y: number, ld: number, b: number, n: number, T: number): void {
    this.pool.flush();
    this.k.addBias(y, ld, b, n, T);
  }

  /**
   * Consumes one token; logits (if wanted) land in activations.logits. With
   * an RMS channel norm the step is one job list (the workers start while
   * this thread is still queueing it).
   */
  step(token: number, wantLogits: boolean): void {
    const { k, c, w, a } = this;
    const d = c.hiddenSize;
    k.embed(w.embed.fmt, w.embed.ptr, d, token, this.embedScale, a.x);
    for (let l = 0; l < w.layers.length; l++) this.layer(l, 1, a.x, a.xn, a.c, a.p, a.k, a.o, a.h, a.u, this.vecProduct);
    if (wantLogits) this.headOne(a.x);
    this.pool.flush();
  }

  /** One token's products (mat-vec). */
  private readonly vecProduct: Product = (m, x, y, _ldy, accumulate) => this.matVec(m, x, y, accumulate);

  /** Final norm and head of the one residual row at x: its logits into activations.logits. */
  private headOne(x: number): void {
    this.normOne(this.w.finalNorm, x, this.a.xn, this.w.head);
    this.matVec(this.w.head, this.a.xn, this.a.logits, false);
  }

  /**
   * Consumes T <= CHUNK tokens. With `logits` a function, every token's
   * logits are handed to it in order, in blocks of up to HEAD_BLOCK rows
   * ([n, vocab] at `at`, valid until it returns); with "last" the last
   * token's land in activations.logits.
   */
  chunk(tokens: ArrayLike<number>, from: number, T: number, logits: "last" | "none" | ((at: number, n: number) => void)): void {
    const { k, c, w, a } = this;
    const d = c.hiddenSize;
    for (let t = 0; t < T; t++) k.embed(w.embed.fmt, w.embed.ptr, d, tokens[from + t], this.embedScale, a.X + 4 * t * d);
    const product: Product = (m, x, y, ldy, accumulate) => this.matMat(m, x, y, ldy, T, accumulate);
    const last = w.layers.length - 1;
    for (let l = 0; l < last; l++) this.layer(l, T, a.X, a.XN, a.C, a.P, a.K, a.O, a.Hh, a.U, product);
    if (typeof logits !== "function") {
      // After the last token mixer the state is complete and no row but the last is read again: the
      // last layer's channel mix and the head for that row alone, as in a decode step, or for none
      // (for metala-380m a 24th of the channel mixes' products, 3% of a prefill's multiply-adds).
      this.tokenMix(last, T, a.X, a.XN, a.C, a.P, a.K, a.O, product);
      if (logits === "last") {
        const row = 4 * (T - 1) * d;
        this.channelMix(last, 1, a.X + row, a.xn, a.O + row, a.h, a.u, this.vecProduct);
        this.headOne(a.X + row);
      }
    } else {
      this.layer(last, T, a.X, a.XN, a.C, a.P, a.K, a.O, a.Hh, a.U, product);
      this.norm(w.finalNorm, a.X, a.XN, T);
      for (let t0 = 0; t0 < T; t0 += HEAD_BLOCK) {
        const n = Math.min(HEAD_BLOCK, T - t0);
        this.matMat(w.head, a.XN + 4 * t0 * d, a.LOGITS, c.vocabSize, n, false);
        this.pool.flush();
        logits(a.LOGITS, n);
      }
    }
    this.pool.flush();
  }

  /** Reads `blocks` blocks of 64 KiB from `base` with every thread; returns the bytes read. */
  readBandwidth(base: number, blocks: number): number {
    this.pool.run("readBandwidth", blocks, 1, [base, 65536, this.a.probe]);
    return blocks * 65536;
  }
}
