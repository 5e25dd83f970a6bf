import { cdiv, makeDispatch, type Dispatch, type ModelDefs } from "./dispatch.js";
import { MAX_SPLITS } from "./gemm.js";
import type { BufferPart, Pipelines } from "./pipelines.js";

/**
 * One layer's GLA and what follows it per token (spec §2 steps 3-6 and the
 * gate), in O: decay and key, then for a long prompt the chunked passes
 * (chunk states, the scan across chunks, the chunk outputs with
 * self-augmentation + head norm + gate), for a short one the parallel pass.
 */
export interface GlaBuffers {
  dims: BufferPart; // {T, nC, start}
  P: BufferPart; // [T, NP] projections [q | k_gate | v | g]
  B: BufferPart; // [nC*64, DK] cumulative log decay in each chunk
  Kk: BufferPart; // [nC*64, DK] keys
  U: BufferPart; // [nC, H, K, V] chunk contributions, then chunk start states (the parallel pass: [H, K, V], the state before the prompt)
  S: BufferPart; // [H, K, V] the layer's state, read and written
  O: BufferPart; // [T, D] output
  waug: BufferPart; // [DK] aug_balance
  /** [splits][T][NP]: the projection product's split-K sums, completed into P with projBias first (dims.psplits of them) */
  partials: BufferPart;
  projBias: BufferPart;
}

/**
 * Workgroups the chunk-state and output kernels aim for: with fewer (chunk,
 * head) pairs, chunk-state splits the value columns over VS workgroups and
 * the output takes a 16-row sub-chunk per workgroup, so that a short prompt
 * still fills a big GPU (on an H200 at T = 512: 64 pairs for 132
 * multiprocessors). Measured there over 24 layers, output with gating:
 * T = 512, per chunk 1.43 ms (split over value columns, gated apart), per
 * sub-chunk 0.96; T = 2048 (256 pairs), per chunk 2.80, per sub-chunk 3.67.
 */
const ENOUGH_WORKGROUPS = 256;

/**
 * Value-column splits offered (where they divide V). Measured on the H200 at
 * T = 512 over 24 layers, with the register tiles of stateKeyRows: 0.25-0.27
 * ms at VS = 2 (TK = 4), 0.28-0.33 at 4 (TK = 2; without the tiles, 0.61 at
 * 2 and 0.37-0.41 at 4).
 */
const STATE_SPLITS = [1, 2];

/**
 * The longest prompt (chunk of a prompt) whose GLA takes the parallel pass
 * (gla-parallel.wgsl: outputs over the whole prompt and the final state in
 * one dispatch after decay/key) instead of the three chunked passes: two
 * dispatches a layer fewer, for work that grows with the square of the
 * prompt. H200, metala-380m f32, whole prefills against the chunked passes
 * (builds alternating calls in one process, best of 20-40): 16 tokens
 * -4.8%, 32 -4.4%, 64 -4.5%, 96 -2.6%, 128 -6.5%, 160 0.0%, 192 +1.0%,
 * 256 +2.4%, 512 +10% (the pass 1.99 ms over 24 layers against 1.04 for
 * the three it replaces).
 */
export const PARALLEL_MAX = 128;

/**
 * Workgroup memory of gla-parallel.wgsl (as it declares it): the scores,
 * two [16][K] blocks of query quads and one of keys (rows padded to an odd
 * quad count), two [16][V] blocks of values.
 */
function parallelPassBytes(m: ModelDefs): number {
  const KQP = Math.ceil(m.K / 4) | 1;
  return 512 * 4 + (32 + 16) * KQP * 16 + 32 * Math.ceil(m.V / 4) * 16;
}

/**
 * Key rows TK of each chunk-state thread's register tile (TK x 4 value
 * columns): the largest of 8, 4, 2 that still leaves a tile for each of the
 * kernel's 256 threads (a larger tile needs fewer workgroup-memory loads per
 * FMA, but idle threads waste the multiprocessor), else 1. metala-380m
 * (K = 64, V = 128): TK = 8 with the value columns whole, 4 split two ways.
 */
function stateKeyRows(K: number, VW: number): number {
  return [8, 4, 2].find((TK) => Math.ceil(K / TK) * Math.ceil(VW / 4) >= 256) ?? 1;
}

export class GlaOp {
  private constructor(
    private readonly decayKey: Dispatch,
    /** for prompts of up to parallelMax tokens (none if 0): decay/key stashing the state, then the parallel pass */
    private readonly parallel: [Dispatch, Dispatch] | undefined,
    private readonly parallelMax: number,
    /** chunk-state kernels by value-column split VS, ascending */
    private readonly chunkStates: { VS: number; d: Dispatch }[],
    private readonly scan: Dispatch,
    /** the output kernel per chunk, and per sub-chunk for few (chunk, head) pairs */
    private readonly output: Dispatch,
    private readonly outputSub: Dispatch,
    private readonly step: Dispatch,
    private readonly heads: number,
    private readonly enough: number,
  ) {}

  /**
   * `enough`: workgroups to aim for when choosing the value-column split;
   * `parallelMax`: the longest prompt for the parallel pass (0: none; none either where its
   * workgroup memory exceeds the device's). Tests force each form.
   */
  static async create(p: Pipelines, m: ModelDefs, b: GlaBuffers, enough = ENOUGH_WORKGROUPS, parallelMax = PARALLEL_MAX): Promise<GlaOp> {
    if (parallelPassBytes(m) > p.device.limits.maxComputeWorkgroupStorageSize) parallelMax = 0;
    const chunkState = (VS: number) =>
      makeDispatch(
        p,
        ["gla-chunk-state.wgsl"],
        { H: m.H, K: m.K, V: m.V, DK: m.DK, NP: m.NP, V_OFF: m.V_OFF, VS, TK: stateKeyRows(m.K, m.V / VS) },
        ["uniform", "read", "read", "read", "rw"],
        [b.dims, b.P, b.B, b.Kk, b.U],
        (_T, nC) => [nC, m.H, VS],
      );
    const output = (file: string, perChunk: number) =>
      makeDispatch(
        p,
        ["math.wgsl", file, "gla-output-shared.wgsl"],
        { H: m.H, K: m.K, V: m.V, DK: m.DK, D: m.D, NP: m.NP, Q_OFF: m.Q_OFF, V_OFF: m.V_OFF, G_OFF: m.G_OFF, SCALE: m.SCALE },
        ["uniform", "read", "read", "read", "read", "read", "rw"],
        [b.dims, b.P, b.B, b.Kk, b.U, b.waug, b.O],
        (_T, nC) => [nC, m.H, perChunk],
      );
    const decayKey = (COPY_STATE: boolean) =>
      makeDispatch(
        p,
        ["math.wgsl", "gla-decay-key.wgsl"],
        { DK: m.DK, NP: m.NP, A_OFF: m.A_OFF, MAX_SPLITS, COPY_STATE, SN: m.H * m.K * m.V },
        ["uniform", "rw", "rw", "rw", "read", "read", "read", "rw"],
        [b.dims, b.P, b.B, b.Kk, b.partials, b.projBias, b.S, b.U],
        (_T, nC) => [cdiv(m.NP, 64), nC],
      );
    const parallel = () =>
      makeDispatch(
        p,
        ["math.wgsl", "gla-parallel.wgsl", "gla-output-shared.wgsl"],
        { H: m.H, K: m.K, V: m.V, DK: m.DK, D: m.D, NP: m.NP, Q_OFF: m.Q_OFF, V_OFF: m.V_OFF, G_OFF: m.G_OFF, SCALE: m.SCALE },
        ["uniform", "read", "read", "read", "read", "read", "rw", "rw"],
        [b.dims, b.P, b.B, b.Kk, b.U, b.waug, b.O, b.S],
        (T) => [m.H * cdiv(m.K, 16) + m.H * cdiv(T, 16)],
      );
    const [decayKeyPlain, parallelPasses, chunkStates, scan, outputChunk, outputSub, step] = await Promise.all([
      decayKey(false),
      parallelMax > 0 ? Promise.all([decayKey(true), parallel()]) : undefined,
      Promise.all(STATE_SPLITS.filter((VS) => m.V % VS === 0).map(async (VS) => ({ VS, d: await chunkState(VS) }))),
      makeDispatch(p, ["gla-scan.wgsl"], { H: m.H, K: m.K, V: m.V, DK: m.DK }, ["uniform", "read", "rw", "rw"], [b.dims, b.B, b.U, b.S], () => [cdiv(m.H * m.K * m.V, 256)]),
      output("gla-output.wgsl", 1),
      output("gla-output-sub.wgsl", 4),
      makeDispatch(
        p,
        ["math.wgsl", "reduce.wgsl", "gla-step.wgsl"],
        { H: m.H, K: m.K, V: m.V, DK: m.DK, D: m.D, NP: m.NP, Q_OFF: m.Q_OFF, A_OFF: m.A_OFF, V_OFF: m.V_OFF, G_OFF: m.G_OFF, SCALE: m.SCALE },
        ["read", "read", "rw", "rw"],
        [b.P, b.waug, b.S, b.O],
        () => [m.H],
      ),
    ]);
    return new GlaOp(decayKeyPlain, parallelPasses, parallelMax, chunkStates, scan, outputChunk, outputSub, step, m.H, enough);
  }

  /**
   * The passes over T tokens (nC chunks), in order (public for per-kernel
   * timing): decay-key, then the parallel pass, or chunk-state, scan, output.
   */
  kernels(T: number, nC: number): Dispatch[] {
    if (this.parallel && T <= this.parallelMax) return this.parallel;
    const vs = this.chunkStates;
    const chunkState = (vs.find((v) => nC * this.heads * v.VS >= this.enough) ?? vs[vs.length - 1]).d;
    return [this.decayKey, chunkState, this.scan, nC * this.heads >= this.enough ? this.output : this.outputSub];
  }

  /** The passes of kernels(), or for a single token the fused recurrent step (one dispatch). */
  encode(pass: GPUComputePassEncoder, T: number, nC: number): void {
    if (T === 1) this.step.encode(pass, T, nC);
    else for (const s of this.kernels(T, nC)) s.encode(pass, T, nC);
  }
}
