import type { MetalaConfig } from "../model/config.js";
import { cdiv, GLA_CHUNK, makeDispatch, modelDefs, type Dispatch } from "./dispatch.js";
import { chooseProduct, chooseResidual, GEMM_PLAN, GemmOp, MAX_SPLITS, planTiles, type GemmPlan, type GemmTile } from "./gemm.js";
import { GlaOp, PARALLEL_MAX } from "./gla.js";
import { gluActSource, storageBuffer, uniformU32, type BufferPart, type Pipelines } from "./pipelines.js";
import type { GpuWeights } from "./weights.js";

/**
 * Split-K counts of a layer's products over T tokens (1: not split), each
 * completed by the kernel that reads the product next: the two residual-
 * adding ones (out and down, both d wide; one count for both, so one uniform
 * tells every norm) by the norms, the projections by the decay-key kernel,
 * the GLU's by glu-fold.wgsl.
 */
export function splitsOf(T: number, c: MetalaConfig, plan: GemmPlan) {
  const d = c.hiddenSize;
  const residual = chooseResidual(T, d, Math.min(d, c.gluDim), plan);
  const proj = chooseProduct(T, modelDefs(c).NP, d, plan);
  const glu = chooseProduct(T, 2 * c.gluDim, d, plan);
  // one token: no tile, so that GemmOp.encode takes the matrix-vector kernel
  const tile = (choice: { tile: GemmTile }) => (T > 1 ? choice.tile : undefined);
  return {
    residual: residual.splits,
    residualTile: tile(residual),
    proj: proj.splits,
    projTile: tile(proj),
    glu: glu.splits,
    gluTile: tile(glu),
  };
}

/**
 * What the launch rules pick for a layer's products at every chunk length
 * of 2 to maxTokens tokens: each kind's tiles unsplit and split over K (only
 * their pipelines are built: the others would be compiled for nothing, e.g.
 * the square tile unsplit for the residual products, the wide one split),
 * and the floats of split-K sums the longest chunk needs (each product's
 * are completed before the next one splits, so one buffer serves them all).
 */
export function launchForms(c: MetalaConfig, plan: GemmPlan, maxTokens: number) {
  const widths = { residual: c.hiddenSize, proj: modelDefs(c).NP, glu: 2 * c.gluDim };
  const forms = { residual: emptyForms(), proj: emptyForms(), glu: emptyForms() };
  let partialFloats = 0;
  for (let T = 2; T <= maxTokens; T++) {
    const s = splitsOf(T, c, plan);
    const tiles = { residual: s.residualTile!, proj: s.projTile!, glu: s.gluTile! };
    for (const k of ["residual", "proj", "glu"] as const) {
      if (s[k] === 1) forms[k].unsplit.add(tiles[k]);
      else {
        forms[k].split.add(tiles[k]);
        partialFloats = Math.max(partialFloats, s[k] * T * widths[k]);
      }
    }
  }
  return { forms, partialFloats };
}

const emptyForms = () => ({ unsplit: new Set<GemmTile>(), split: new Set<GemmTile>() });

/**
 * Whether a call's last layer runs its channel mix (out product, GLU, down
 * product) on the last row alone, or not at all: when the call wants the
 * logits of that row only, or none. After the last token mixer the state is
 * complete and no other row is read again (for metala-380m a 24th of the
 * channel mixes' products, 3% of a prefill's multiply-adds). Decode steps
 * (T = 1) take their usual path.
 */
const lastRowOnly = (T: number, headRows: number) => T > 1 && headRows <= 1;

/**
 * A layer's two recording stages (encodeStages): its token mixer's input
 * (token norm, conv, q/k/v/g product), then the rest of the layer.
 */
export const STAGES_PER_LAYER = 2;

/** Tokens per thread of shaders/short-conv.wgsl (at least 3: the first block alone reads the old conv state). */
const CONV_ROWS = 4;

/** The families of ops a forward pass records, as the benchmark times them. */
export const OP_FAMILIES = ["embed", "norm+conv", "qkvg", "gla", "out", "glu", "down", "head"] as const;
export type OpFamily = (typeof OP_FAMILIES)[number];
export const GEMM_FAMILIES: ReadonlySet<OpFamily> = new Set(["qkvg", "out", "glu", "down"]);

export interface LayerOps {
  tokenNorm: Dispatch;
  /** the short conv over a chunk, with the conv state's update */
  conv: Dispatch;
  /** tokenNorm + conv for a single token */
  convStep: Dispatch;
  qkvg: GemmOp;
  gla: GlaOp;
  out: GemmOp;
  channelNorm: Dispatch;
  glu: GemmOp;
  /** the GLU's gated unit when its product was split over K (models whose GLU never splits have none) */
  gluFold?: Dispatch;
  down: GemmOp;
}

export interface ForwardBuffers {
  tokens: GPUBuffer; // u32 [maxTokens]
  dims: GPUBuffer; // uniform {T, nC, 0, 0}
  headDims: GPUBuffer; // uniform {rows wanted, 0, first wanted row, 0}
  /**
   * Every layer's state in one buffer: layer l's S [H, K, V] and conv state
   * [3, d] (the engine-neutral layout) at l * stateLayout.stride, so that
   * the state is read back in one copy (48 copies of a few hundred KB cost
   * an H200 ~0.3 ms of a 12.8 ms prefill, one per submission part ~0.1 ms).
   */
  state: GPUBuffer;
  stateLayout: StateLayout;
  logits: GPUBuffer; // [logitRows, vocab]
}

/** Byte offsets of a layer's S and conv state within its stretch of the state buffer, both at binding-aligned offsets. */
export interface StateLayout {
  sBytes: number;
  convOffset: number;
  convBytes: number;
  stride: number;
}

export function stateLayoutOf(c: MetalaConfig, alignment: number): StateLayout {
  const m = modelDefs(c);
  const align = (n: number) => Math.ceil(n / alignment) * alignment;
  const sBytes = m.H * m.K * m.V * 4, convBytes = 3 * c.hiddenSize * 4;
  return { sBytes, convOffset: align(sBytes), convBytes, stride: align(align(sBytes) + convBytes) };
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
    private readonly takeLastRow: Dispatch,
    private readonly plan: GemmPlan,
  ) {}

  static async create(
    p: Pipelines,
    w: GpuWeights,
    c: MetalaConfig,
    maxTokens: number,
    logitRows: number,
    plan: GemmPlan = GEMM_PLAN,
    glaParallelMax = PARALLEL_MAX,
  ): Promise<GpuForward> {
    const tiles = plan.tiles;
    // every tile of the plan, of which each product builds the forms launchForms found it uses
    const productTiles = planTiles(plan);
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
    const dims = uniformU32(device, [0, 0, 0, 0, 0, 0, 0, 0], "dims");
    const headDims = uniformU32(device, [0, 0, 0, 0, 0, 0, 0, 0], "head dims");
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
    const stateLayout = stateLayoutOf(c, device.limits.minStorageBufferOffsetAlignment);
    const state = buf((w.layers.length * stateLayout.stride) / 4, "state");
    const layerS = (l: number): BufferPart => ({ buffer: state, offset: l * stateLayout.stride, size: stateLayout.sBytes });
    const layerConv = (l: number): BufferPart => ({ buffer: state, offset: l * stateLayout.stride + stateLayout.convOffset, size: stateLayout.convBytes });
    // the split-K sums of whichever product is split (none for a model that never splits)
    const { forms, partialFloats } = launchForms(c, plan, maxTokens);
    const partials = partialFloats > 0 ? buf(partialFloats, "split-K sums") : undefined;
    const splitAt = (k: keyof typeof forms) => forms[k].split.size > 0;
    const splitInto = (k: keyof typeof forms) => (splitAt(k) ? partials : undefined);

    const normDefs = { D: d, LAYERNORM: c.normType === "layernorm", MAX_SPLITS };
    const rowsGrid = (T: number): [number] => [T];
    // a norm right after a residual-adding product first completes X with its split-K sums and bias
    const norm = (uniform: GPUBuffer, nw: { w: GPUBuffer; b: GPUBuffer }, out: GPUBuffer, productBias?: GPUBuffer) =>
      productBias && splitAt("residual")
        ? makeDispatch(p, ["reduce.wgsl", "norm-residual-io.wgsl", "norm.wgsl"], normDefs, ["uniform", "rw", "read", "read", "rw", "read", "read"], [uniform, X, nw.w, nw.b, out, partials!, productBias], rowsGrid)
        : makeDispatch(p, ["reduce.wgsl", "norm-io.wgsl", "norm.wgsl"], normDefs, ["uniform", "read", "read", "read", "rw"], [uniform, X, nw.w, nw.b, out], rowsGrid);
    // the pipelines are built here: a device that cannot build one (its limits) leaves no buffers behind
    try {
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
          conv: await makeDispatch(p, ["math.wgsl", "short-conv.wgsl"], { D: d, R: CONV_ROWS }, ["uniform", "read", "read", "rw", "rw"], [dims, XN, lw.conv, layerConv(l), CV], (T) => [cdiv(d, 64), cdiv(T, CONV_ROWS)]),
          convStep: await makeDispatch(p, ["math.wgsl", "reduce.wgsl", "short-conv-step.wgsl"], normDefs, ["read", "read", "read", "read", "rw", "rw"], [X, lw.tokenNorm.w, lw.tokenNorm.b, lw.conv, layerConv(l), CV], () => [1]),
          qkvg: await GemmOp.create(p, { N: m.NP, K: d, lda: d, ldc: m.NP }, "store", c.gluAct, { rows: dims, A: CV, W: lw.wQkvg, bias: lw.bQkvg, C: P, scales: lw.scales?.qkvg, partials: splitInto("proj") }, productTiles, w.wtype, forms.proj),
          gla: await GlaOp.create(p, m, { dims, P, B, Kk, U, S: layerS(l), O, waug: lw.waug, partials: partials ?? w.zeroBias, projBias: lw.bQkvg }, undefined, glaParallelMax),
          out: await GemmOp.create(p, { N: d, K: d, lda: d, ldc: d }, "add", c.gluAct, { rows: dims, A: O, W: lw.wOut, bias: w.zeroBias, C: X, scales: lw.scales?.out, partials: splitInto("residual") }, productTiles, w.wtype, forms.residual),
          channelNorm: await norm(dims, lw.channelNorm, XN, w.zeroBias),
          glu: await GemmOp.create(
            p,
            { N: 2 * glu, K: d, lda: d, ldc: glu },
            "glu",
            c.gluAct,
            { rows: dims, A: XN, W: lw.w12, bias: lw.b12, C: Hh, scales: lw.scales?.w12, partials: splitInto("glu"), gemvNorm: { A: X, w: lw.channelNorm.w, b: lw.channelNorm.b, layernorm: c.normType === "layernorm" } },
            productTiles,
            w.wtype,
            forms.glu,
          ),
          gluFold: splitAt("glu")
            ? await makeDispatch(
                p,
                ["math.wgsl", "activations.wgsl", "glu-fold.wgsl"],
                { N: 2 * glu, MAX_SPLITS },
                ["uniform", "read", "read", "rw"],
                [dims, partials!, lw.b12, Hh],
                (T) => [cdiv(glu / 2, 64), T],
                gluActSource(c.gluAct),
              )
            : undefined,
          down: await GemmOp.create(p, { N: d, K: glu, lda: glu, ldc: d }, "add", c.gluAct, { rows: dims, A: Hh, W: lw.w3, bias: lw.b3, C: X, scales: lw.scales?.w3, partials: splitInto("residual") }, productTiles, w.wtype, forms.residual),
        })),
      );
      const finalNorm = await norm(headDims, w.finalNorm, HN, w.layers[w.layers.length - 1].b3);
      const headOps = await Promise.all(
        w.head.map((part) => GemmOp.create(p, { N: part.rows, K: d, lda: d, ldc: V, cOff: part.lo }, "store", c.gluAct, { rows: headDims, A: HN, W: part.buffer, bias: w.zeroBias, C: logits }, tiles, w.tableType)),
      );
      const takeLastRow = await makeDispatch(p, ["take-last-row.wgsl"], { D: d }, ["uniform", "rw", "rw"], [dims, X, O], () => [1]);
      return new GpuForward(c, maxTokens, logitRows, { tokens, dims, headDims, state, stateLayout, logits }, owned, embedOps, layers, finalNorm, headOps, takeLastRow, plan);
    } catch (e) {
      for (const b of owned) b.destroy();
      throw e;
    }
  }

  /**
   * What a call over T tokens writes to the dims and head-dims uniforms
   * before recording: sizes, the head's first row, and the split-K counts
   * (residual products, projections, GLU) the completing kernels add up (0:
   * the product completed its output itself).
   */
  uniforms(T: number, headRows: number): { dims: Uint32Array<ArrayBuffer>; headDims: Uint32Array<ArrayBuffer> } {
    const s = splitsOf(T, this.config, this.plan);
    const [res, proj, glu] = [s.residual, s.proj, s.glu].map((n) => (n > 1 ? n : 0));
    // after a last layer on its last row alone, that row is row 0, complete (one-row products add into X)
    const [first, headSplits] = lastRowOnly(T, headRows) ? [0, 0] : [T - headRows, res];
    return {
      dims: new Uint32Array([T, cdiv(T, GLA_CHUNK), 0, res, proj, glu, 0, 0]),
      headDims: new Uint32Array([headRows, 0, first, headSplits, 0, 0, 0, 0]),
    };
  }

  /**
   * Records the forward pass of T tokens (already written with their dims),
   * and the head for `headRows` rows. `only` records just those families of
   * ops (for timing each family alone; the results are then meaningless).
   */
  encode(pass: GPUComputePassEncoder, T: number, headRows: number, only?: ReadonlySet<OpFamily>): void {
    this.encodeStages(pass, T, headRows, 0, this.stages, only);
  }

  /**
   * Records stages [from, to) of the forward pass, two a layer (STAGES_PER_LAYER):
   * its token norm, conv and q/k/v/g product, then the rest; with the
   * embedding when from is 0, and the head when `to` ends the last layer (so
   * that a long recording can go to the GPU in parts, the first parts
   * running while the rest is recorded).
   */
  encodeStages(pass: GPUComputePassEncoder, T: number, headRows: number, from: number, to: number, only?: ReadonlySet<OpFamily>): void {
    const nC = cdiv(T, GLA_CHUNK);
    const splits = splitsOf(T, this.config, this.plan);
    const on = (f: OpFamily) => !only || only.has(f);
    if (from === 0 && on("embed")) for (const e of this.embedOps) e.encode(pass, T, nC);
    for (let i = Math.floor(from / STAGES_PER_LAYER); i * STAGES_PER_LAYER < to; i++) {
      const l = this.layers[i];
      const mixIn = i * STAGES_PER_LAYER >= from;
      if (mixIn && on("norm+conv")) {
        if (T === 1) l.convStep.encode(pass, T, nC);
        else {
          l.tokenNorm.encode(pass, T, nC);
          l.conv.encode(pass, T, nC);
        }
      }
      if (mixIn && on("qkvg")) l.qkvg.encode(pass, T, splits.projTile, splits.proj);
      if ((i + 1) * STAGES_PER_LAYER > to) break;
      if (on("gla")) l.gla.encode(pass, T, nC);
      if (i === this.layers.length - 1 && lastRowOnly(T, headRows)) {
        // the state is complete: the channel mix only for the row whose logits are wanted, if any
        if (headRows === 0) break;
        this.takeLastRow.encode(pass, T, nC);
        if (on("out")) l.out.encode(pass, 1);
        if (on("glu")) l.glu.encode(pass, 1);
        if (on("down")) l.down.encode(pass, 1);
        break;
      }
      if (on("out")) l.out.encode(pass, T, splits.residualTile, splits.residual);
      // a decode step's GLU product normalises its input itself
      if (on("norm+conv") && T > 1) l.channelNorm.encode(pass, T, nC);
      if (on("glu")) {
        l.glu.encode(pass, T, splits.gluTile, splits.glu);
        if (splits.glu > 1) l.gluFold!.encode(pass, T, nC);
      }
      if (on("down")) l.down.encode(pass, T, splits.residualTile, splits.residual);
    }
    if (to === this.stages && on("head") && headRows > 0) {
      this.finalNorm.encode(pass, headRows, 0);
      for (const h of this.headOps) h.encode(pass, headRows);
    }
  }

  /** Stages of a whole forward pass (encodeStages). */
  get stages(): number {
    return this.layers.length * STAGES_PER_LAYER;
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
