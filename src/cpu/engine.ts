/**
 * The CPU engine: MetaLA on WebAssembly SIMD kernels (assembly/), threads
 * over one shared memory. Weights are placed once at load (converted to the
 * chosen storage dtype on the way in); sessions share the activation
 * buffers and take turns in one resident state slot, their state being
 * swapped in and out (a few MB, well under a millisecond) when another
 * session runs.
 */
import { emptyState, type Engine, type EngineSession, type LogitsWanted, type ModelState } from "../engine.js";
import { MetalaError } from "../errors.js";
import { productMacsPerToken, type MetalaConfig } from "../model/config.js";
import type { WeightSource } from "../model/source.js";
import { wasmFeatures } from "./features.js";
import { Forward, CHUNK, planActivations, planState, type Activations, type StateSlot } from "./forward.js";
import { compileKernels, FMT, instantiateKernels, type KernelBuild, type Kernels, type WeightDType } from "./kernels.js";
import { ThreadPool } from "./pool.js";
import { Arena, loadWeights, planWeights, stagingBytes, unsupportedReason, type WeightPlan } from "./weights.js";

export { wasmFeatures, type WasmFeatures } from "./features.js";
export type { WeightDType } from "./kernels.js";

export interface WasmEngineOptions {
  /** Storage of the weight matrices (norms, biases, conv and state stay f32). Default f32. */
  dtype?: WeightDType;
  /** Threads including the calling one; default: the host's cores. */
  threads?: number;
  /** Where warnings go (single-thread fallback); default console.warn. */
  warn?: (message: string) => void;
}

export interface WasmEngine extends Engine {
  readonly kind: "wasm";
  readonly dtype: WeightDType;
  readonly threads: number;
  readonly build: KernelBuild;
  /** Bytes of all stored weights in wasm memory. */
  readonly weightBytes: number;
  /** Bytes one decode step reads (weights of every layer, the head, an embedding row). */
  readonly weightBytesPerToken: number;
  /**
   * Read bandwidth of this engine's memory with its threads, in GB/s: the
   * best of `passes` passes of the SIMD read kernel over the whole weight
   * region (at least as big as what a decode step reads).
   */
  probeBandwidth(passes?: number): number;
  /** Multiply-adds of a prefill per prompt token: every element of the layers' weight matrices once (the head runs on the last token only). */
  readonly macsPerPromptToken: number;
  /**
   * Peak multiply-add rate of this engine's threads, all at once, in GMAC/s:
   * the best of `passes` passes of the multiply-add instructions its
   * mat-mat products run for its dtype on this build (assembly/probe.ts
   * macPeak), operands in registers.
   */
  probeCompute(passes?: number): number;
}

// A compute probe pass: 8 units per thread of ~4M multiply-adds (0.1-0.3
// ms), taken one at a time by whichever thread is free, so that a thread the
// OS holds back lowers the figure only by the time it is away; a pass is
// short (0.6-2.5 ms) and the best of many counts, so that on a shared host
// some pass falls between the neighbours' time slices (with 32 units per
// thread and 5 passes a whole bench run's probes could all miss).
const PROBE_UNIT_MACS = 1 << 22;
const PROBE_UNITS_PER_THREAD = 8;

/** The shortest of `passes` timed runs of `run`, in seconds: on a shared host the slower ones measure the neighbours. */
function bestSeconds(passes: number, run: () => unknown): number {
  let best = Infinity;
  for (let i = 0; i < passes; i++) {
    const t0 = performance.now();
    run();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
}

const RESERVED = 65536; // below this: the kernels' own constant data
const PAGE = 65536;
const MAX_PAGES = 65535; // wasm32: 4 GiB less one page, so that typed-array lengths stay below 2^32

export async function createWasmEngine(source: WeightSource, opts: WasmEngineOptions = {}): Promise<WasmEngine> {
  const c = source.config;
  const dtype = opts.dtype ?? "f32";
  if (!(dtype in FMT)) throw new MetalaError("usage", `dtype must be one of ${Object.keys(FMT).join(", ")}, got "${dtype}"`);
  const why = unsupportedReason(c);
  if (why) throw new MetalaError("config", `${source.label}: the wasm engine cannot run this model: ${why}`);
  const features = await wasmFeatures();
  let threads = opts.threads ?? features.cores;
  if (!Number.isInteger(threads) || threads < 1) throw new MetalaError("usage", `threads must be a positive integer, got ${threads}`);
  if (threads > 1 && !features.threads) {
    (opts.warn ?? console.warn)("metala: shared memory is unavailable here (a page needs cross-origin isolation for it); the wasm engine runs on one thread");
    threads = 1;
  }
  const shared = features.threads;
  const { module, build } = await compileKernels(features, shared);

  const arena = new Arena(RESERVED);
  const weights = planWeights(c, source.tiedHead, dtype, arena);
  const acts = planActivations(c, threads, arena);
  const slot = planState(c, arena);
  const staging = arena.alloc(stagingBytes(c, weights));
  const pages = Math.ceil(arena.top / PAGE);
  if (pages > MAX_PAGES)
    throw new MetalaError(
      "device",
      `${source.label} needs ${(arena.top / 2 ** 30).toFixed(2)} GiB of wasm memory at dtype ${dtype}, more than wasm32's 4 GiB; use --dtype q8 or q4`,
    );
  let memory: WebAssembly.Memory;
  try {
    memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
  } catch (e) {
    throw new MetalaError("device", `cannot allocate ${(arena.top / 2 ** 30).toFixed(2)} GiB of wasm memory for ${source.label}: ${(e as Error).message}`);
  }
  const buf = memory.buffer;
  const kernels = instantiateKernels(module, memory);
  const pool = await ThreadPool.create(kernels, module, memory, threads);
  try {
    await loadWeights(source, weights, buf, kernels, pool, staging);
  } catch (e) {
    pool.dispose();
    throw e;
  }
  const forward = new Forward(kernels, pool, c, weights, acts, slot);
  return new WasmEngineImpl(c, dtype, threads, build, buf, forward, weights, acts, slot, pool, kernels);
}

class WasmEngineImpl implements WasmEngine {
  readonly kind = "wasm" as const;
  readonly description: string;
  readonly weightBytes: number;
  readonly weightBytesPerToken: number;
  readonly macsPerPromptToken: number;
  resident: WasmSession | null = null;
  private disposed = false;

  constructor(
    readonly config: MetalaConfig,
    readonly dtype: WeightDType,
    readonly threads: number,
    readonly build: KernelBuild,
    readonly buf: ArrayBufferLike,
    readonly forward: Forward,
    private readonly weights: WeightPlan,
    readonly acts: Activations,
    readonly slot: StateSlot,
    private readonly pool: ThreadPool,
    private readonly kernels: Kernels,
  ) {
    this.description = `wasm ${build} ${dtype} x${threads} thread${threads > 1 ? "s" : ""}`;
    this.weightBytes = weights.end - weights.start;
    this.weightBytesPerToken = weights.bytesPerToken;
    this.macsPerPromptToken = productMacsPerToken(config);
  }

  createSession(): EngineSession {
    this.live();
    return new WasmSession(this);
  }

  live(): void {
    if (this.disposed) throw new MetalaError("device", "the wasm engine was disposed");
  }

  probeBandwidth(passes = 5): number {
    this.live();
    const blocks = Math.floor(this.weightBytes / 65536);
    let bytes = 0;
    const seconds = bestSeconds(passes, () => (bytes = this.forward.readBandwidth(this.weights.start, blocks)));
    return bytes / seconds / 1e9;
  }

  probeCompute(passes = 15): number {
    this.live();
    const fmt = FMT[this.dtype];
    const perRound = this.kernels.macPeakPerRound(fmt);
    const rounds = Math.ceil(PROBE_UNIT_MACS / perRound);
    const macs = rounds * perRound * PROBE_UNITS_PER_THREAD * this.threads;
    // the operands (512 bytes of weights, 64 of tokens) in the mat-mat's
    // scratch, unused between products: 0.5 everywhere is a normal f32
    // (subnormals would slow the f32 path), and any i16 or i8 lanes will do
    const w = this.acts.scratch, x = w + 512;
    new Float32Array(this.buf, w, 144).fill(0.5);
    const run = () => this.pool.run("macPeak", PROBE_UNITS_PER_THREAD * this.threads, 1, [fmt, w, x, rounds, this.acts.probe], 1);
    run(); // the first calls run in wasm's baseline tier
    return macs / bestSeconds(passes, run) / 1e9;
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    this.pool.dispose();
  }
}

class WasmSession implements EngineSession {
  private saved: ModelState | null = null; // while not resident; null = empty state
  private position = 0;
  private disposed = false;

  constructor(private readonly e: WasmEngineImpl) {}

  private f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.e.buf, ptr, n);
  }

  private slotArrays(l: number): { S: Float32Array; conv: Float32Array } {
    const { slot } = this.e;
    return { S: this.f32(slot.S + l * slot.sBytesPerLayer, slot.sBytesPerLayer / 4), conv: this.f32(slot.conv + l * slot.convBytesPerLayer, slot.convBytesPerLayer / 4) };
  }

  private readSlot(): ModelState {
    const layers = [];
    for (let l = 0; l < this.e.config.numLayers; l++) {
      const s = this.slotArrays(l);
      layers.push({ S: s.S.slice(), conv: s.conv.slice() });
    }
    return { position: this.position, layers };
  }

  private writeSlot(state: ModelState | null): void {
    for (let l = 0; l < this.e.config.numLayers; l++) {
      const s = this.slotArrays(l);
      if (state) {
        s.S.set(state.layers[l].S);
        s.conv.set(state.layers[l].conv);
      } else {
        s.S.fill(0);
        s.conv.fill(0);
      }
    }
  }

  /** Makes this session's state the one in the engine's slot. */
  private acquire(): void {
    if (this.disposed) throw new MetalaError("device", "this session was disposed");
    this.e.live();
    const e = this.e;
    if (e.resident === this) return;
    if (e.resident) e.resident.saved = e.resident.readSlot();
    this.writeSlot(this.saved);
    this.saved = null;
    e.resident = this;
  }

  private checkToken(t: number): void {
    if (!Number.isInteger(t) || t < 0 || t >= this.e.config.vocabSize)
      throw new MetalaError("input", `token id ${t} is outside the vocabulary [0, ${this.e.config.vocabSize})`);
  }

  async prefill(tokens: ArrayLike<number>, want: LogitsWanted = "last"): Promise<Float32Array[]> {
    for (let i = 0; i < tokens.length; i++) this.checkToken(tokens[i]);
    this.acquire();
    const out: Float32Array[] = [];
    const V = this.e.config.vocabSize;
    const { forward, acts } = this.e;
    const all = (at: number, n: number) => {
      for (let t = 0; t < n; t++) out.push(this.f32(at + 4 * t * V, V).slice());
    };
    for (let from = 0; from < tokens.length; from += CHUNK) {
      const T = Math.min(CHUNK, tokens.length - from);
      const last = from + T === tokens.length;
      const mode = want === "all" ? all : want === "last" && last ? "last" : "none";
      forward.chunk(tokens, from, T, mode);
      if (mode === "last") out.push(this.f32(acts.logits, V).slice());
      this.position += T;
    }
    return out;
  }

  async step(token: number): Promise<Float32Array> {
    this.checkToken(token);
    this.acquire();
    this.e.forward.step(token, true);
    this.position++;
    return this.f32(this.e.acts.logits, this.e.config.vocabSize).slice();
  }

  async exportState(): Promise<ModelState> {
    if (this.e.resident === this) return this.readSlot();
    const s = this.saved ?? emptyState(this.e.config);
    return { position: this.position, layers: s.layers.map((l) => ({ S: l.S.slice(), conv: l.conv.slice() })) };
  }

  async importState(state: ModelState): Promise<void> {
    const c = this.e.config;
    const sLen = c.numHeads * c.headKeyDim * c.headValueDim;
    if (state.layers.length !== c.numLayers || state.layers.some((l) => l.S.length !== sLen || l.conv.length !== 3 * c.hiddenSize))
      throw new MetalaError("format", `state does not fit this model: expected ${c.numLayers} layers of S [${c.numHeads}, ${c.headKeyDim}, ${c.headValueDim}] and conv [3, ${c.hiddenSize}]`);
    this.acquire();
    this.writeSlot(state);
    this.position = state.position;
  }

  reset(): void {
    this.position = 0;
    this.saved = null;
    if (this.e.resident === this) this.writeSlot(null);
  }

  dispose(): void {
    this.disposed = true;
    if (this.e.resident === this) this.e.resident = null;
    this.saved = null;
  }
}
