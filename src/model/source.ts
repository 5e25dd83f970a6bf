import type { MetalaConfig } from "./config.js";

export type StoredDType = "F32" | "F16" | "BF16";

/**
 * The weights of one model, read lazily, one tensor at a time, converted to
 * f32. Engines pull each tensor into their own memory (WASM linear memory, GPU
 * buffers) so that a multi-GB checkpoint never exists twice in memory.
 * Implemented by safetensors checkpoints (one file or sharded) and by the
 * seeded random presets used for benchmarks.
 */
export interface WeightSource {
  readonly config: MetalaConfig;
  /** Whether the LM head is the embedding (lm_head.weight absent or tie_word_embeddings true). */
  readonly tiedHead: boolean;
  /** A human name for errors and `info` (folder path, preset name). */
  readonly label: string;
  has(name: string): boolean;
  shape(name: string): readonly number[];
  storedDType(name: string): StoredDType;
  /** Reads one tensor as f32; writes into `dest` (length = product of shape) when given. */
  read(name: string, dest?: Float32Array): Promise<Float32Array>;
  /** Total bytes of the stored tensors this model uses. */
  readonly storedBytes: number;
  close(): Promise<void>;
}
