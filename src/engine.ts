import type { MetalaConfig } from "./model/config.js";

/**
 * The engine-neutral recurrent state of one sequence (architecture.md): per
 * layer the GLA state S as f32 [H, K, V] and the short-conv state as f32
 * [3, d] (the last three conv inputs, oldest first). `position` counts the
 * tokens consumed so far.
 */
export interface ModelState {
  position: number;
  layers: { S: Float32Array; conv: Float32Array }[];
}

/** Which positions of a chunk need logits: the final norm and head are the costliest op, so ask for few. */
export type LogitsWanted = "last" | "all" | "none";

/** One sequence on one engine: the state lives inside the engine between calls. */
export interface EngineSession {
  /**
   * Consumes `tokens` (the parallel/chunked path) from the current state and
   * returns the logits asked for, one Float32Array of vocab size per position.
   */
  prefill(tokens: ArrayLike<number>, want?: LogitsWanted): Promise<Float32Array[]>;
  /** Consumes one token (the recurrent path) and returns its logits. */
  step(token: number): Promise<Float32Array>;
  exportState(): Promise<ModelState>;
  importState(state: ModelState): Promise<void>;
  /** Back to the empty state at position 0. */
  reset(): void;
  dispose(): void;
}

export type EngineKind = "reference" | "wasm" | "webgpu";

export interface Engine {
  readonly kind: EngineKind;
  readonly config: MetalaConfig;
  /** What the engine runs on, for logs and `info` (e.g. "wasm relaxed-simd x2 threads"). */
  readonly description: string;
  createSession(): EngineSession;
  dispose(): Promise<void>;
}

export function emptyState(c: MetalaConfig): ModelState {
  const layers = [];
  for (let i = 0; i < c.numLayers; i++)
    layers.push({ S: new Float32Array(c.numHeads * c.headKeyDim * c.headValueDim), conv: new Float32Array(3 * c.hiddenSize) });
  return { position: 0, layers };
}
