import type { MetalaConfig } from "../model/config.js";
import { cdiv, GLA_CHUNK, makeDispatch, modelDefs, type Dispatch } from "./dispatch.js";
import { chooseSplits, GEMM_PLAN, GemmOp, type GemmPlan } from "./gemm.js";
import { GlaOp } from "./gla.js";
import { storageBuffer, uniformU32, type Pipelines } from "./pipelines.js";
import type { GpuWeights } from "./weights.js";

/**
 * Split-K count of the two residual-adding products (out and down, both d
 * wide) over T tokens: one count for both, so one uniform tells every norm.
 */
function residualSplits(T: number, c: MetalaConfig, plan: GemmPlan): number {
  return chooseSplits(T, c.hiddenSize, Math.min(c.hiddenSize, c.gluDim), plan);
}

/** The families of ops a forward pass records, as the benchmark times them. */
export const OP_FAMILIES = ["embed", "norm+conv", "qkvg", "gla", "out", "glu", "down", "head"] as const;
export type OpFamily = (typeof OP_FAMILIES)[number];
export const GEMM_FAMILIES: ReadonlySet<OpFamily> = new Set(["qkvg", "out", "glu", "down"]);

export interface LayerOps {
  tokenNorm: Dispatch;
  conv: Dispatch;
  convState: Dispatch;
  /** tokenNorm + conv + convState for a single token */
  convStep: Dispatch;
  qkvg: GemmOp;
  gla: GlaOp;
  out: GemmOp;
  channelNorm: Dispatch;
  glu: GemmOp;
  down: GemmOp;
}

export interface ForwardBuffers {
  tokens: GPUBuffer; // u32 [maxTokens]
  dims: GPUBuffer; // uniform {T, nC, 0, 0}
  headDims: GPUBuffer; // uniform {rows wanted, 0, first wanted row, 0}
  /** Per layer: S [H, K, V] and the conv state [3, d] (the engine-neutral layout). */
  state: { S: GPUBuffer; conv: GPUBuffer }[];
  logits: GPUBuffer; // [logitRows, vocab]
}

/**
 * The buffers of one session and every dispatch of a forward pass over a
 * chunk of up to `maxTokens` tokens, all bound once: running a chunk is
 * writing two small uniforms and the token ids, then recording dispatches.
 */
export class GpuForward {
  private constructor(
    readonly config: MetalaConfig,
    readonly maxTokens: number,
    readonly logitRows: number,
    readonly buffers: ForwardBuffers,
    private readonly owned: GPUBuffer[],
    private readonly embedOps: Dispatch[],
    readonly layers: LayerOps[],
    private readonly finalNorm: Dispatch,
    private readonly headOps: GemmOp[],
    private readonly plan: GemmPlan,
  ) {}

  static async create(
    p: Pipelines,
    w: GpuWeights,
    c: MetalaConfig,
    maxTokens: number,
    logitRows: number,
    plan: GemmPlan = GEMM_PLAN,
  ): Promise<GpuForward> {
    const tiles = plan.tiles;
    const device = p.device;
    const m = modelDefs(c);
    const d = c.hiddenSize, glu = c.gluDim, V = c.vocabSize;
    const nCmax = cdiv(maxTokens, GLA_CHUNK);
    const owned: GPUBuffer[] = [];
    const buf = (floats: number, label: string) => {
      const b = storageBuffer(device, floats * 4, label);
      owned.push(b);
      return b;
    };
    const tokens = buf(maxTokens, "tokens");
    const dims = uniformU32(device, [0, 0, 0, 0], "dims");
    const headDims = uniformU32(device, [0, 0, 0, 0], "head dims");
    owned.push(dims, headDims);
    const X = buf(maxTokens * d, "x");
    const XN = buf(maxTokens * d, "x normed");
    const CV = buf(maxTokens * d, "conv out");
    const P = buf(maxTokens * m.NP, "projections");
    const B = buf(nCmax * GLA_CHUNK * m.DK, "log decay");
    const Kk = buf(nCmax * GLA_CHUNK * m.DK, "keys");
    const U = buf(nCmax * m.H * m.K * m.V, "chunk states");
    const O = buf(maxTokens * d, "gla out");
    const Hh = buf(maxTokens * glu, "glu hidden");
    const HN = buf(logitRows * d, "head in");
    const logits = buf(logitRows * V, "logits");
    const state = w.layers.map((_, l) => ({ S: buf(m.H * m.K * m.V, `L${l}.S`), conv: buf(3 * d, `L${l}.conv`) }));
    // the split-K sums of the residual-adding products, for the largest splits x rows any chunk uses
    // (none, and no split pipelines to compile, where no chunk length splits: small models)
    let partialRows = 0;
    for (let T = 2; T <= maxTokens; T++) {
      const splits = residualSplits(T, c, plan);
      if (splits > 1) partialRows = Math.max(partialRows, splits * T);
    }
    const partials = partialRows > 0 ? buf(partialRows * d, "split-K sums") : undefined;

    const normDefs = { D: d, LAYERNORM: c.normType === "layernorm" };
    const rowsGrid = (T: number): [number] => [T];
    // a norm right after a residual-adding product first completes X with its split-K sums and bias
    const norm = (uniform: GPUBuffer, nw: { w: GPUBuffer; b: GPUBuffer }, out: GPUBuffer, productBias?: GPUBuffer) =>
      productBias && partials
        ? makeDispatch(p, ["reduce.wgsl", "norm-residual-io.wgsl", "norm.wgsl"], normDefs, ["uniform", "rw", "read", "read", "rw", "read", "read"], [uniform, X, nw.w, nw.b, out, partials, productBias], rowsGrid)
        : makeDispatch(p, ["reduce.wgsl", "norm-io.wgsl", "norm.wgsl"], normDefs, ["uniform", "read", "read", "read", "rw"], [uniform, X, nw.w, nw.b, out], rowsGrid);
    const embedOps = await Promise.all(
      w.embed.map((part) =>
        makeDispatch(
          p,
          ["embed.wgsl"],
          { D: d, LO: part.lo, ROWS: part.rows, F16: w.tableType === "f16", SCALE: { f32: c.noScaleEmbedding ? 1 : Math.sqrt(d) } },
          ["uniform", "read", "read", "rw"],
          [dims, tokens, part.buffer, X],
          (T) => [cdiv(d, 64), T],
        ),
      ),
    );
    const layers = await Promise.all(
      w.layers.map(async (lw, l): Promise<LayerOps> => ({
        tokenNorm: await norm(dims, lw.tokenNorm, XN, l > 0 ? w.layers[l - 1].b3 : undefined),
        conv: await makeDispatch(p, ["math.wgsl", "short-conv.wgsl"], { D: d }, ["uniform", "read", "read", "read", "rw"], [dims, XN, lw.conv, state[l].conv, CV], (T) => [cdiv(d, 64), T]),
        convState: await makeDispatch(p, ["short-conv-state.wgsl"], { D: d }, ["uniform", "read", "rw"], [dims, XN, state[l].conv], () => [cdiv(d, 64)]),
        convStep: await makeDispatch(p, ["math.wgsl", "reduce.wgsl", "short-conv-step.wgsl"], normDefs, ["read", "read", "read", "read", "rw", "rw"], [X, lw.tokenNorm.w, lw.tokenNorm.b, lw.conv, state[l].conv, CV], () => [1]),
        qkvg: await GemmOp.create(p, { N: m.NP, K: d, lda: d, ldc: m.NP }, "store", c.gluAct, { rows: dims, A: CV, W: lw.wQkvg, bias: lw.bQkvg, C: P, scales: lw.scales?.qkvg }, tiles, w.wtype),
        gla: await GlaOp.create(p, m, { dims, P, B, Kk, U, S: state[l].S, O, waug: lw.waug }),
        out: await GemmOp.create(p, { N: d, K: d, lda: d, ldc: d }, "add", c.gluAct, { rows: dims, A: O, W: lw.wOut, bias: w.zeroBias, C: X, scales: lw.scales?.out, partials }, tiles, w.wtype),
        channelNorm: await norm(dims, lw.channelNorm, XN, w.zeroBias),
        glu: await GemmOp.create(
          p,
          { N: 2 * glu, K: d, lda: d, ldc: glu },
          "glu",
          c.gluAct,
          { rows: dims, A: XN, W: lw.w12, bias: lw.b12, C: Hh, scales: lw.scales?.w12, gemvNorm: { A: X, w: lw.channelNorm.w, b: lw.channelNorm.b, layernorm: c.normType === "layernorm" } },
          tiles,
          w.wtype,
        ),
        down: await GemmOp.create(p, { N: d, K: glu, lda: glu, ldc: d }, "add", c.gluAct, { rows: dims, A: Hh, W: lw.w3, bias: lw.b3, C: X, scales: lw.scales?.w3, partials }, tiles, w.wtype),
      })),
    );
    const finalNorm = await norm(headDims, w.finalNorm, HN, w.layers[w.layers.length - 1].b3);
    const headOps = await Promise.all(
      w.head.map((part) => GemmOp.create(p, { N: part.rows, K: d, lda: d, ldc: V, cOff: part.lo }, "store", c.gluAct, { rows: headDims, A: HN, W: part.buffer, bias: w.zeroBias, C: logits }, tiles, w.tableType)),
    );
    return new GpuForward(c, maxTokens, logitRows, { tokens, dims, headDims, state, logits }, owned, embedOps, layers, finalNorm, headOps, plan);
  }

  /**
   * What a call over T tokens writes to the dims and head-dims uniforms
   * before recording: sizes, the head's first row, and the split-K count the
   * norms add up (0: the products completed X themselves).
   */
  uniforms(T: number, headRows: number): { dims: Uint32Array<ArrayBuffer>; headDims: Uint32Array<ArrayBuffer> } {
    const s = residualSplits(T, this.config, this.plan);
    const splits = s > 1 ? s : 0;
    return { dims: new Uint32Array([T, cdiv(T, GLA_CHUNK), 0, splits]), headDims: new Uint32Array([headRows, 0, T - headRows, splits]) };
  }

  /**
   * Records the forward pass of T tokens (already written with their dims),
   * and the head for `headRows` rows. `only` records just those families of
   * ops (for timing each family alone; the results are then meaningless).
   */
  encode(pass: GPUComputePassEncoder, T: number, headRows: number, only?: ReadonlySet<OpFamily>): void {
    this.encodeLayers(pass, T, headRows, 0, this.layers.length, only);
  }

  /**
   * Records layers [from, to) of the forward pass: with the embedding when
   * from is 0, and the head when `to` is the last layer (so that a long
   * recording can go to the GPU in parts, the first parts running while the
   * rest is recorded).
   */
  encodeLayers(pass: GPUComputePassEncoder, T: number, headRows: number, from: number, to: number, only?: ReadonlySet<OpFamily>): void {
    const nC = cdiv(T, GLA_CHUNK);
    const splits = residualSplits(T, this.config, this.plan);
    const on = (f: OpFamily) => !only || only.has(f);
    if (from === 0 && on("embed")) for (const e of this.embedOps) e.encode(pass, T, nC);
    for (const l of this.layers.slice(from, to)) {
      if (on("norm+conv")) {
        if (T === 1) l.convStep.encode(pass, T, nC);
        else {
          l.tokenNorm.encode(pass, T, nC);
          l.conv.encode(pass, T, nC);
          l.convState.encode(pass, T, nC);
        }
      }
      if (on("qkvg")) l.qkvg.encode(pass, T);
      if (on("gla")) l.gla.encode(pass, T, nC);
      if (on("out")) l.out.encode(pass, T, undefined, splits);
      // a decode step's GLU product normalises its input itself
      if (on("norm+conv") && T > 1) l.channelNorm.encode(pass, T, nC);
      if (on("glu")) l.glu.encode(pass, T);
      if (on("down")) l.down.encode(pass, T, undefined, splits);
    }
    if (to === this.layers.length && on("head") && headRows > 0) {
      this.finalNorm.encode(pass, headRows, 0);
      for (const h of this.headOps) h.encode(pass, headRows);
    }
  }

  /** Bytes of the activation and state buffers: fixed by maxTokens, whatever the prompt length. */
  get bufferBytes(): number {
    return this.owned.reduce((n, b) => n + b.size, 0);
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
    for (const l of this.layers) for (const g of [l.qkvg, l.out, l.glu, l.down]) g.destroy();
    for (const h of this.headOps) h.destroy();
  }
}
