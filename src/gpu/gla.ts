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
 * Workgroups the chunk-state and output kernels aim for: with fewer (chunk,
 * head) pairs they split the value columns over VS workgroups, so that a
 * short prompt still fills a big GPU (on an H200 at T = 512: 64 pairs for
 * 132 multiprocessors).
 */
const ENOUGH_WORKGROUPS = 256;

/**
 * Value-column splits offered (where they divide V). Measured on the H200
 * at T = 512 over 24 layers: chunk-state 0.61 ms at VS = 2, 0.46 at 4; the
 * output kernel, which recomputes its chunk's scores in every split, 1.27
 * ms at 2 and 1.39 at 4, so it stops at 2.
 */
const STATE_SPLITS = [1, 2, 4];
const OUTPUT_SPLITS = [1, 2];

export class GlaOp {
  private constructor(
    /** decay-key, chunk-state, scan, output, finish */
    private readonly decayKey: Dispatch,
    /** chunk-state and output kernels by value-column split VS, ascending */
    private readonly chunkStates: { VS: number; d: Dispatch }[],
    private readonly scan: Dispatch,
    private readonly outputs: { VS: number; d: Dispatch }[],
    private readonly finish: Dispatch,
    private readonly step: Dispatch,
    private readonly heads: number,
    private readonly enough: number,
  ) {}

  /** `enough`: workgroups to aim for when choosing the value-column split (tests force each form). */
  static async create(p: Pipelines, m: ModelDefs, b: GlaBuffers, enough = ENOUGH_WORKGROUPS): Promise<GlaOp> {
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
    const [decayKey, scan, finish] = await Promise.all([
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
    ]);
    const variants = (splits: number[], make: (VS: number) => Promise<Dispatch>) => Promise.all(splits.filter((VS) => m.V % VS === 0).map(async (VS) => ({ VS, d: await make(VS) })));
    const [chunkStates, outputs] = await Promise.all([variants(STATE_SPLITS, chunkState), variants(OUTPUT_SPLITS, output)]);
    const step = await makeDispatch(
      p,
      ["math.wgsl", "reduce.wgsl", "gla-step.wgsl"],
      { H: m.H, K: m.K, V: m.V, DK: m.DK, D: m.D, NP: m.NP, Q_OFF: m.Q_OFF, A_OFF: m.A_OFF, V_OFF: m.V_OFF, G_OFF: m.G_OFF, SCALE: m.SCALE },
      ["read", "read", "rw", "rw"],
      [b.P, b.waug, b.S, b.O],
      () => [m.H],
    );
    return new GlaOp(decayKey, chunkStates, scan, outputs, finish, step, m.H, enough);
  }

  /** The chunked passes for nC chunks, in order: decay-key, chunk-state, scan, output, finish (public for per-kernel timing). */
  kernels(nC: number): Dispatch[] {
    const pick = (vs: { VS: number; d: Dispatch }[]) => (vs.find((v) => nC * this.heads * v.VS >= this.enough) ?? vs[vs.length - 1]).d;
    return [this.decayKey, pick(this.chunkStates), this.scan, pick(this.outputs), this.finish];
  }

  /** The chunked passes, or for a single token the fused recurrent step (one dispatch instead of five). */
  encode(pass: GPUComputePassEncoder, T: number, nC: number): void {
    if (T === 1) this.step.encode(pass, T, nC);
    else for (const s of this.kernels(nC)) s.encode(pass, T, nC);
  }
}
