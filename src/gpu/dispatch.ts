import type { MetalaConfig } from "../model/config.js";
import type { ShaderDefs } from "./shaders.js";
import type { BindingKind, BufferPart, Pipelines } from "./pipelines.js";

/** Workgroup counts of one dispatch, from the chunk's token count T and 64-token GLA chunk count nC. */
export type Grid = (T: number, nC: number) => [number, number?, number?];

/** A compiled kernel bound to its buffers: recording it is three calls, no allocation. */
export class Dispatch {
  constructor(
    readonly pipeline: GPUComputePipeline,
    readonly bindGroup: GPUBindGroup,
    readonly grid: Grid,
  ) {}

  encode(pass: GPUComputePassEncoder, T: number, nC: number): void {
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    const [x, y = 1, z = 1] = this.grid(T, nC);
    pass.dispatchWorkgroups(x, y, z);
  }
}

/** `extra`: WGSL the host writes itself (e.g. the chosen GLU activation), placed before the files. */
export async function makeDispatch(
  p: Pipelines,
  files: string[],
  defs: ShaderDefs,
  bindings: BindingKind[],
  parts: BufferPart[],
  grid: Grid,
  extra?: string,
): Promise<Dispatch> {
  const pipeline = await p.pipeline({ files, defs, bindings, extra });
  return new Dispatch(pipeline, p.bindGroup(bindings, parts, files.at(-1)), grid);
}

/**
 * Model sizes every kernel is compiled with, and the column layout of the
 * projection buffer P: one row per token holding [q | k_gate | v | g]
 * (widths dk, dk, d, d), the output of one fused GEMM.
 */
export function modelDefs(c: MetalaConfig) {
  const d = c.hiddenSize;
  const dk = c.keyDim;
  return {
    D: d,
    H: c.numHeads,
    K: c.headKeyDim,
    V: c.headValueDim,
    DK: dk,
    NP: 2 * dk + 2 * d,
    Q_OFF: 0,
    A_OFF: dk,
    V_OFF: 2 * dk,
    G_OFF: 2 * dk + d,
    SCALE: { f32: 1 / Math.sqrt(c.headKeyDim) },
  };
}
export type ModelDefs = ReturnType<typeof modelDefs>;

/** Tokens per chunk of the chunked GLA (spec §4). */
export const GLA_CHUNK = 64;

export const cdiv = (a: number, b: number) => Math.ceil(a / b);
