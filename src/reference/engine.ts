import { emptyState, type Engine, type EngineSession, type LogitsWanted, type ModelState } from "../engine.js";
import { MetalaError } from "../errors.js";
import type { MetalaConfig } from "../model/config.js";
import type { WeightSource } from "../model/source.js";
import { forward } from "./forward.js";
import type { GlaMode } from "./gla.js";
import { loadWeights, type ModelWeights } from "./weights.js";

/**
 * The reference engine: the plain float64 forward pass behind the Engine
 * interface, so that any engine can be diffed against it. prefill runs the
 * chunked GLA (or the recurrent one when asked), step the recurrent one.
 * Between calls the state is kept exactly as the engine-neutral ModelState
 * (f32), as in every other engine.
 */
export interface ReferenceSession extends EngineSession {
  /** prefill, returning the float64 logits (for likelihoods compared at 1e-6). */
  prefillF64(tokens: ArrayLike<number>, want?: LogitsWanted): Float64Array[];
  /** step, returning the float64 logits. */
  stepF64(token: number): Float64Array;
}

export interface ReferenceEngine extends Engine {
  createSession(): ReferenceSession;
}

export interface ReferenceEngineOptions {
  /** The GLA form prefill uses: "chunked" (default, the GPU blueprint) or "recurrent" (the definition). */
  gla?: GlaMode;
}

function checkTokens(tokens: ArrayLike<number>, vocabSize: number): void {
  for (let i = 0; i < tokens.length; i++) {
    const id = tokens[i];
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
      throw new MetalaError("input", `token id ${id} is out of range: the vocabulary has ${vocabSize} tokens (ids 0..${vocabSize - 1})`);
  }
}

function copyState(s: ModelState): ModelState {
  return { position: s.position, layers: s.layers.map((l) => ({ S: l.S.slice(), conv: l.conv.slice() })) };
}

function checkState(s: ModelState, c: MetalaConfig): void {
  const sSize = c.numHeads * c.headKeyDim * c.headValueDim;
  const bad = (what: string) => new MetalaError("format", `state does not fit this model: ${what}`);
  if (!Number.isInteger(s.position) || s.position < 0) throw bad(`position ${s.position} is not a non-negative integer`);
  if (s.layers.length !== c.numLayers) throw bad(`${s.layers.length} layers, the model has ${c.numLayers}`);
  s.layers.forEach((l, i) => {
    if (!(l.S instanceof Float32Array) || l.S.length !== sSize) throw bad(`layer ${i} S must be f32 [${c.numHeads}, ${c.headKeyDim}, ${c.headValueDim}]`);
    if (!(l.conv instanceof Float32Array) || l.conv.length !== 3 * c.hiddenSize) throw bad(`layer ${i} conv must be f32 [3, ${c.hiddenSize}]`);
  });
}

class Session implements ReferenceSession {
  private state: ModelState;
  private disposed = false;

  constructor(private readonly weights: ModelWeights, private readonly mode: GlaMode) {
    this.state = emptyState(weights.config);
  }

  private live(): ModelWeights {
    if (this.disposed) throw new Error("reference session used after dispose()");
    return this.weights;
  }

  prefillF64(tokens: ArrayLike<number>, want: LogitsWanted = "last"): Float64Array[] {
    const w = this.live();
    checkTokens(tokens, w.config.vocabSize);
    return forward(w, tokens, this.state, this.mode, want);
  }

  stepF64(token: number): Float64Array {
    const w = this.live();
    checkTokens([token], w.config.vocabSize);
    return forward(w, [token], this.state, "recurrent", "last")[0];
  }

  async prefill(tokens: ArrayLike<number>, want: LogitsWanted = "last"): Promise<Float32Array[]> {
    return this.prefillF64(tokens, want).map((l) => Float32Array.from(l));
  }

  async step(token: number): Promise<Float32Array> {
    return Float32Array.from(this.stepF64(token));
  }

  async exportState(): Promise<ModelState> {
    this.live();
    return copyState(this.state);
  }

  async importState(state: ModelState): Promise<void> {
    const w = this.live();
    checkState(state, w.config);
    this.state = copyState(state);
  }

  reset(): void {
    this.state = emptyState(this.live().config);
  }

  dispose(): void {
    this.disposed = true;
  }
}

/**
 * Loads every weight of `source` into memory (f32) and returns the engine.
 * The source stays open and owned by the caller.
 */
export async function createReferenceEngine(source: WeightSource, opts: ReferenceEngineOptions = {}): Promise<ReferenceEngine> {
  const mode = opts.gla ?? "chunked";
  const weights = await loadWeights(source);
  return {
    kind: "reference",
    config: source.config,
    description: `reference TypeScript, f64 activations, ${mode} GLA prefill`,
    createSession: () => new Session(weights, mode),
    // Nothing to release: the weights are ordinary JS memory, freed with the engine.
    dispose: async () => {},
  };
}
