import { cdiv, makeDispatch, type Dispatch, type ModelDefs } from "./dispatch.js";
import type { BufferPart, Pipelines } from "./pipelines.js";

/**
 * One layer's chunked GLA and what follows it per token (spec §2 steps 3-6
 * and the gate): decay and key, chunk states, the scan across chunks, the
 * chunk outputs, then self-augmentation + head norm + gate, in place in O.
 */
export interface GlaBuffers {
  dims: BufferPart; // {T, nC, start}
  P: BufferPart; // [T, NP] projections [q | k_gate | v | g]
  B: BufferPart; // [nC*64, DK] cumulative log decay in each chunk
  Kk: BufferPart; // [nC*64, DK] keys
  U: BufferPart; // [nC, H, K, V] chunk contributions, then chunk start states
  S: BufferPart; // [H, K, V] the layer's state, read and written
  O: BufferPart; // [T, D] output
  waug: BufferPart; // [DK] aug_balance
}

/**
 * Below this many (chunk, head) pairs the chunk-state and output kernels
 * split the value columns in two (VS = 2), so that a short prompt still
 * gives a big GPU enough workgroups (measured on an H200 at T = 512: 64
 * pairs for 132 multiprocessors).
 */
const SPLIT_BELOW = 256;

export class GlaOp {
  private constructor(
    /** decay-key, chunk-state, scan, output, finish */
    private readonly steps: Dispatch[],
    /** the same with chunk-state and output splitting the value columns (null where V is odd) */
    private readonly splitSteps: Dispatch[] | null,
    private readonly step: Dispatch,
    /** chunk count under which the split form runs */
    private readonly splitBelow: number,
  ) {}

  /** `splitBelow`: (chunk, head) pairs under which the value columns are split (tests force either form). */
  static async create(p: Pipelines, m: ModelDefs, b: GlaBuffers, splitBelow = SPLIT_BELOW): Promise<GlaOp> {
    const chunkState = (VS: number) =>
      makeDispatch(p, ["gla-chunk-state.wgsl"], { H: m.H, K: m.K, V: m.V, DK: m.DK, NP: m.NP, V_OFF: m.V_OFF, VS }, ["uniform", "read", "read", "read", "rw"], [b.dims, b.P, b.B, b.Kk, b.U], (_T, nC) => [nC, m.H, VS]);
    const output = (VS: number) =>
      makeDispatch(
        p,
        ["gla-output.wgsl"],
        { H: m.H, K: m.K, V: m.V, DK: m.DK, D: m.D, NP: m.NP, Q_OFF: m.Q_OFF, V_OFF: m.V_OFF, SCALE: m.SCALE, VS },
        ["uniform", "read", "read", "read", "read", "rw"],
        [b.dims, b.P, b.B, b.Kk, b.U, b.O],
        (_T, nC) => [nC, m.H, VS],
      );
    const [decayKey, scan, finish, state1, output1] = await Promise.all([
      makeDispatch(p, ["math.wgsl", "gla-decay-key.wgsl"], { DK: m.DK, NP: m.NP, A_OFF: m.A_OFF }, ["uniform", "read", "rw", "rw"], [b.dims, b.P, b.B, b.Kk], (_T, nC) => [cdiv(m.DK, 64), nC]),
      makeDispatch(p, ["gla-scan.wgsl"], { H: m.H, K: m.K, V: m.V, DK: m.DK }, ["uniform", "read", "rw", "rw"], [b.dims, b.B, b.U, b.S], () => [cdiv(m.H * m.K * m.V, 256)]),
      makeDispatch(
        p,
        ["math.wgsl", "gla-finish.wgsl"],
        { K: m.K, V: m.V, DK: m.DK, D: m.D, NP: m.NP, Q_OFF: m.Q_OFF, V_OFF: m.V_OFF, G_OFF: m.G_OFF },
        ["uniform", "read", "read", "read", "rw"],
        [b.dims, b.P, b.Kk, b.waug, b.O],
        (T) => [T, m.H],
      ),
      chunkState(1),
      output(1),
    ]);
    const split = m.V % 2 === 0 ? [decayKey, await chunkState(2), scan, await output(2), finish] : null;
    const step = await makeDispatch(
      p,
      ["math.wgsl", "reduce.wgsl", "gla-step.wgsl"],
      { H: m.H, K: m.K, V: m.V, DK: m.DK, D: m.D, NP: m.NP, Q_OFF: m.Q_OFF, A_OFF: m.A_OFF, V_OFF: m.V_OFF, G_OFF: m.G_OFF, SCALE: m.SCALE },
      ["read", "read", "rw", "rw"],
      [b.P, b.waug, b.S, b.O],
      () => [m.H],
    );
    return new GlaOp([decayKey, state1, scan, output1, finish], split, step, splitBelow / m.H);
  }

  /** The chunked passes for nC chunks, in order: decay-key, chunk-state, scan, output, finish (public for per-kernel timing). */
  kernels(nC: number): Dispatch[] {
    return this.splitSteps && nC < this.splitBelow ? this.splitSteps : this.steps;
  }

  /** The chunked passes, or for a single token the fused recurrent step (one dispatch instead of five). */
  encode(pass: GPUComputePassEncoder, T: number, nC: number): void {
    if (T === 1) this.step.encode(pass, T, nC);
    else for (const s of this.kernels(nC)) s.encode(pass, T, nC);
  }
}
