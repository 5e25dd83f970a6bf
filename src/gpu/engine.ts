import { emptyState, type Engine, type EngineSession, type LogitsWanted, type ModelState } from "../engine.js";
import { MetalaError } from "../errors.js";
import { productMacsPerToken, type MetalaConfig } from "../model/config.js";
import type { WeightSource } from "../model/source.js";
import { openDevice, type GpuContext } from "./device.js";
import { STAGES_PER_LAYER, GpuForward, type StateLayout } from "./forward.js";
import { devicePlan, GEMM_PLAN } from "./gemm.js";
import { PARALLEL_MAX } from "./gla.js";
import { GpuLostError } from "./lost.js";
import { pipelinesFor, type Pipelines } from "./pipelines.js";
import { uploadWeights, type GpuWeights } from "./weights.js";

export interface WebGpuEngineOptions {
  dtype?: "f32" | "f16" | "q8" | "q4";
  /** Tokens per submission of a prefill (default 4096, fewer where buffer limits demand). */
  chunkTokens?: number;
  /** A device already opened (tests, benchmarks); the engine then does not destroy it. */
  context?: GpuContext;
  /** Largest storage binding to use, below the device's limit (tests of the split weight upload). */
  maxBindingBytes?: number;
  /** Least K per split-K slice (default GEMM_PLAN's; tests set it low to split a small model's products). */
  minSplitK?: number;
  /**
   * The longest prompt chunk whose GLA takes the parallel pass (gla.ts PARALLEL_MAX by default; 0
   * on a software adapter, whose shader compiler spends ~10 s on that kernel, SwiftShader's for one).
   */
  glaParallelMax?: number;
}

/** Layers per submission of a prefill chunk once its first parts have grown to it (partsOf). */
const LAYERS_PER_SUBMISSION = 4;

/** A mappable buffer for state read-backs, and when its last read-back has been copied out (or given up). */
interface StateStaging {
  buffer: GPUBuffer;
  free: Promise<void>;
}

/** Rows of logits one submission can return when all positions are wanted. */
const LOGIT_ROWS = 256;

function checkShape(c: MetalaConfig): void {
  // vec4 loads along K of every projection, and 4-aligned column offsets in the projection buffer
  if (c.hiddenSize % 8 !== 0 || c.gluDim % 4 !== 0)
    throw new MetalaError("device", `the webgpu engine needs decoder_embed_dim divisible by 8 and glu_dim by 4 (got ${c.hiddenSize}, ${c.gluDim})`);
}

function checkTokens(tokens: ArrayLike<number>, vocab: number): void {
  for (let i = 0; i < tokens.length; i++) {
    const id = tokens[i];
    if (!Number.isInteger(id) || id < 0 || id >= vocab)
      throw new MetalaError("input", `token id ${id} is out of range: the vocabulary has ${vocab} tokens (ids 0..${vocab - 1})`);
  }
}

/** The engine, plus what `metala bench` reports about it. */
export interface WebGpuEngine extends Engine {
  readonly kind: "webgpu";
  /** How the projection matrices are stored: "f32", "f16" (two to a u32), "q8" or "q4" (quantize.ts); arithmetic in f32. */
  readonly dtype: string;
  /** Bytes of weights on the device. */
  readonly weightBytes: number;
  /** Bytes one decode step reads: every layer's weights and the head (the embedding gives one row). */
  readonly weightBytesPerToken: number;
  /** Read bandwidth of the device memory in GB/s. */
  probeBandwidth(): Promise<number>;
  /** Multiply-adds of the layers' products per prompt token (productMacsPerToken). */
  readonly macsPerPromptToken: number;
  /** Peak rate of the device's f32 multiply-adds in GMAC/s (probeGpuCompute). */
  probeCompute(): Promise<number>;
}

class GpuEngine implements WebGpuEngine {
  readonly kind = "webgpu" as const;
  readonly description: string;
  /** Set once the device is lost or reported an error: every later call fails fast. */
  lostReason: string | null = null;
  private readonly sessions = new Set<WebGpuSession>();
  /**
   * One set of activation buffers and bound dispatches for all sessions:
   * their calls go through one queue in order, so they can share them. The
   * forward's state buffers hold the state of the `resident` session; the
   * others keep theirs in their own buffers (swapSessions).
   */
  private forwardPromise: Promise<GpuForward> | null = null;
  private resident: WebGpuSession | null = null;
  /** Counts the calls recorded on the shared forward: commands recorded ahead are stale once it moves. */
  epoch = 0;
  private readonly stagings = new Map<number, GPUBuffer>();
  private readonly stateStagings: StateStaging[] = [];
  private nextState = 0;

  constructor(
    readonly ctx: GpuContext,
    readonly config: MetalaConfig,
    readonly pipelines: Pipelines,
    readonly weights: GpuWeights,
    readonly chunkTokens: number,
    private readonly ownsDevice: boolean,
    private readonly minSplitK = GEMM_PLAN.minSplitK,
    private readonly glaParallelMax?: number,
  ) {
    const i = ctx.info;
    this.description = `webgpu ${[i.vendor, i.architecture, i.device].filter(Boolean).join(" ") || "adapter"}${i.isFallbackAdapter ? " (software)" : ""} ${weights.wtype} weights`;
    ctx.device.lost.then((info) => this.markLost(`device lost (${info.reason}): ${info.message}`));
    ctx.device.addEventListener("uncapturederror", (ev) => this.markLost(`GPU error: ${(ev as GPUUncapturedErrorEvent).error.message}`));
  }

  get weightBytes(): number {
    return this.weights.bytes;
  }

  get dtype(): string {
    return this.weights.wtype;
  }

  get weightBytesPerToken(): number {
    const embedBytes = this.weights.head === this.weights.embed ? 0 : this.config.vocabSize * this.config.hiddenSize * (this.weights.tableType === "f32" ? 4 : 2);
    return this.weights.bytes - embedBytes;
  }

  async probeBandwidth(): Promise<number> {
    const { probeGpuBandwidth } = await import("./bench.js");
    return probeGpuBandwidth(this.ctx);
  }

  get macsPerPromptToken(): number {
    return productMacsPerToken(this.config);
  }

  async probeCompute(): Promise<number> {
    const { probeGpuCompute } = await import("./bench.js");
    return probeGpuCompute(this.ctx);
  }

  markLost(reason: string): void {
    this.lostReason ??= reason;
  }

  createSession(): EngineSession {
    if (this.lostReason) throw new MetalaError("device", `webgpu engine unusable: ${this.lostReason}`);
    const s = new WebGpuSession(this);
    this.sessions.add(s);
    return s;
  }

  forward(): Promise<GpuForward> {
    if (!this.forwardPromise) {
      const maxTokens = this.chunkTokens;
      const software = this.ctx.info.isFallbackAdapter === true;
      const plan = devicePlan(this.ctx.device.limits, this.weights.wtype, { software, minSplitK: this.minSplitK });
      const glaParallelMax = this.glaParallelMax ?? (software ? 0 : PARALLEL_MAX);
      this.forwardPromise = GpuForward.create(this.pipelines, this.weights, this.config, maxTokens, Math.min(LOGIT_ROWS, maxTokens), plan, glaParallelMax);
    }
    return this.forwardPromise;
  }

  /**
   * One mappable buffer per logits size (a decode step's, a prefill's last
   * row, a chunk's rows), shared by the sessions, whose calls run one at a
   * time: a session made per request (Model.generateText) finds them made.
   * A step recorded ahead and the step that runs it get the same buffer.
   */
  logitStaging(bytes: number): GPUBuffer {
    let b = this.stagings.get(bytes);
    if (!b) {
      b = this.ctx.device.createBuffer({ size: bytes, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ, label: `logits read-back ${bytes}` });
      this.stagings.set(bytes, b);
    }
    return b;
  }

  /**
   * The mappable buffer the next state read-back goes to, once the read-back
   * that used it last has been copied out: two taken in turn, so that a
   * call's state can land (and be copied out on the host) while the next
   * call already runs.
   */
  async stateStaging(bytes: number): Promise<StateStaging> {
    const s = (this.stateStagings[this.nextState] ??= {
      buffer: this.ctx.device.createBuffer({ size: bytes, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ, label: `state read-back ${this.nextState}` }),
      free: Promise.resolve(),
    });
    this.nextState ^= 1;
    await s.free;
    return s;
  }

  /**
   * Records into `enc` what puts session `s`'s state into the forward's
   * state buffers: the resident session's state saved to its own buffers,
   * then `s`'s copied in (or cleared when `s` starts from the empty state).
   * GPU-side copies of a few MB, in the same submission as the work.
   */
  swapSessions(s: WebGpuSession, f: GpuForward, enc: GPUCommandEncoder): void {
    this.epoch++;
    const working = f.buffers.state;
    if (this.resident !== s) {
      this.resident?.saveState(working, enc);
      if (!s.zero) s.loadState(working, enc);
      this.resident = s;
    }
    if (s.zero) {
      enc.clearBuffer(working);
      s.zero = false;
    }
  }

  forget(s: WebGpuSession): void {
    this.sessions.delete(s);
    if (this.resident === s) this.resident = null;
  }

  async dispose(): Promise<void> {
    for (const s of [...this.sessions]) s.dispose();
    for (const b of this.stagings.values()) b.destroy();
    for (const st of this.stateStagings) st.buffer.destroy();
    if (this.forwardPromise) await this.forwardPromise.then((f) => f.destroy(), () => undefined);
    this.weights.destroy();
    if (this.ownsDevice) this.ctx.device.destroy();
  }
}

class WebGpuSession implements EngineSession {
  /** The state as last read back: what a lost device leaves the caller. */
  private host: ModelState;
  /** Tokens consumed on the GPU since `host` was read back. */
  private pending: number[] = [];
  private disposed = false;
  /** Where a read-back is copied out of its mapping; then swapped with `host`. */
  private incoming: ModelState;
  /** The last state read-back submitted: settles once it was copied into `host` (or failed with the device). */
  private landing: Promise<void> = Promise.resolve();
  /** Bumped by reset and importState: a read-back submitted before is then not copied into `host`. */
  private generation = 0;
  /** The next decode step's commands, recorded ahead, valid while the engine's epoch is unchanged. */
  private prepared: { cmd: GPUCommandBuffer; epoch: number } | null = null;
  /** Where the last call's time went, in ms (for benchmarks): recording + submission, waiting for the GPU and the mapping (recording the next step meanwhile), copying the logits out. */
  readonly lastCall = { encodeMs: 0, waitMs: 0, readMs: 0 };
  /** The session's state while another session is resident (null until first needed). */
  private own: GPUBuffer | null = null;
  /** The state is the empty state (fresh or reset): cleared on the device when the session next runs. */
  zero = true;

  constructor(private readonly engine: GpuEngine) {
    this.host = emptyState(engine.config);
    this.incoming = emptyState(engine.config);
  }

  private async live(): Promise<GpuForward> {
    if (this.disposed) throw new Error("webgpu session used after dispose()");
    if (this.engine.lostReason) throw this.lost(this.engine.lostReason);
    return this.engine.forward();
  }

  saveState(working: GPUBuffer, enc: GPUCommandEncoder): void {
    this.own ??= this.engine.ctx.device.createBuffer({ size: working.size, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label: "saved state" });
    enc.copyBufferToBuffer(working, 0, this.own, 0, working.size);
  }

  loadState(working: GPUBuffer, enc: GPUCommandEncoder): void {
    enc.copyBufferToBuffer(this.own!, 0, working, 0, working.size);
  }

  /** Tokens in the state on the GPU (read back or not). */
  private get position(): number {
    return this.host.position + this.pending.length;
  }

  /** `since`: where the failing call started; its own tokens from there on are not the caller's to replay. */
  private lost(reason: string, since = Infinity): GpuLostError {
    this.engine.markLost(reason);
    return new GpuLostError(`webgpu engine lost: ${reason}`, copyState(this.host), this.pending.slice(0, Math.max(0, since - this.host.position)));
  }

  /**
   * The commands of one call's layers [from, to): the session's state
   * swapped in if needed (first part), the forward pass over T tokens, then
   * (last part) the wanted logits copied into `staging`.
   */
  private encodeCall(f: GpuForward, T: number, headRows: number, staging: GPUBuffer | null, from = 0, to = f.stages): GPUCommandBuffer {
    const enc = this.engine.ctx.device.createCommandEncoder();
    if (from === 0) this.engine.swapSessions(this, f, enc);
    if (T > 0) {
      const pass = enc.beginComputePass();
      f.encodeStages(pass, T, headRows, from, to);
      pass.end();
    }
    if (staging && to === f.stages) enc.copyBufferToBuffer(f.buffers.logits, 0, staging, 0, staging.size);
    return enc.finish();
  }

  /**
   * The stage ranges (GpuForward.encodeStages) a call is submitted in. A
   * prefill goes in parts: the GPU starts on the first (the embedding and
   * the first layer's norm, conv and q/k/v/g product: 4 dispatches) while
   * the next are recorded, each part twice the one before up to
   * LAYERS_PER_SUBMISSION layers, so that recording the next part takes
   * less time than the GPU takes for the current one (recording and
   * submitting a 24-layer pass took 2-5 ms on an H200 host, up to a third of
   * the GPU time of a 512-token prefill); the last part is the last layer, so
   * that its logits are soon mapped once the GPU is done. H200, the builds
   * alternating calls in one process, best of 60, three runs: T=512 11.99 /
   * 11.99 / 11.94 ms against 12.05 / 12.06 / 12.00 with a whole first layer
   * as the first part; 1024 21.72 against 21.83; 4096 within 0.2%.
   */
  private partsOf(f: GpuForward, T: number): [number, number][] {
    const last = f.stages - STAGES_PER_LAYER;
    if (T <= 1 || last <= 0) return [[0, f.stages]];
    const parts: [number, number][] = [];
    for (let from = 0, size = 1; from < last; from += size, size = Math.min(2 * size, LAYERS_PER_SUBMISSION * STAGES_PER_LAYER)) parts.push([from, Math.min(last, from + size)]);
    parts.push([last, f.stages]);
    return parts;
  }

  /**
   * One call: its parts submitted, the logits' staging buffer mapped after
   * the last; with `readState`, the whole state buffer is copied to a
   * mappable one in a submission of its own after that (`landing`), so that
   * the logits are mapped without waiting for it: the 6.6 MB copy (metala-
   * 380m) goes to host memory at PCIe speed, ~0.1-0.2 ms of a 12.6 ms
   * 512-token prefill on an H200 when it ran before the logits, and the
   * copy out of the mapping (~1 ms on the host) runs while the GPU runs the
   * next call. Without logits, the call waits for its state if
   * `waitForState` (else it returns once submitted). A decode step's
   * commands do not depend on the token (it is written to a buffer), so
   * after every call (a prefill is most often followed by steps) the next
   * step's are recorded while the GPU runs this one, and used if nothing
   * else was recorded on the engine since.
   */
  private async run(f: GpuForward, tokens: ArrayLike<number>, headRows: number, readState: boolean, since = this.position, waitForState = true): Promise<Float32Array[]> {
    const { device } = this.engine.ctx;
    const c = this.engine.config;
    const T = tokens.length;
    const b = f.buffers;
    // (a long prompt's chunks wait here for the read-back two chunks back to be copied out)
    const stateRead = readState ? await this.engine.stateStaging(b.state.size) : null;
    const t0 = performance.now();
    device.queue.writeBuffer(b.tokens, 0, Uint32Array.from(tokens));
    const u = f.uniforms(T, headRows);
    device.queue.writeBuffer(b.dims, 0, u.dims);
    device.queue.writeBuffer(b.headDims, 0, u.headDims);
    const rowBytes = c.vocabSize * 4;
    const staging = headRows ? this.engine.logitStaging(headRows * rowBytes) : null;
    const isStep = T === 1 && headRows === 1 && !readState;
    const ready = isStep && this.prepared !== null && this.prepared.epoch === this.engine.epoch && !this.zero;
    device.pushErrorScope("out-of-memory");
    device.pushErrorScope("validation");
    for (const [from, to] of this.partsOf(f, T)) device.queue.submit([ready ? this.prepared!.cmd : this.encodeCall(f, T, headRows, staging, from, to)]);
    const logitsMapped = staging?.mapAsync(GPUMapMode.READ);
    // counted as consumed now: a read-back landing before this call returns takes them off again
    for (let i = 0; i < T; i++) this.pending.push(tokens[i]);
    if (stateRead) {
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(b.state, 0, stateRead.buffer, 0, b.state.size);
      device.queue.submit([enc.finish()]);
      this.land(stateRead, b.stateLayout);
    }
    const t1 = performance.now();
    this.prepared = { cmd: this.encodeCall(f, 1, 1, this.engine.logitStaging(rowBytes)), epoch: this.engine.epoch };
    // both popped before any await: another session's call may push scopes of its own meanwhile
    const [validation, oom] = await Promise.all([device.popErrorScope(), device.popErrorScope()]);
    const fail = async (reason: string) => {
      // no read-back in flight lands after an error: their tokens stay in `pending`, to replay
      this.generation++;
      await Promise.allSettled([logitsMapped, this.landing]);
      if (staging?.mapState === "mapped") staging.unmap();
      return this.lost(reason, since);
    };
    const err = validation ?? oom;
    if (err) throw await fail(`GPU error: ${err.message}`);
    const out: Float32Array[] = [];
    const tw = performance.now();
    let tr = tw;
    try {
      if (staging) {
        await logitsMapped;
        if (this.engine.lostReason) throw new Error(this.engine.lostReason);
        tr = performance.now();
        const mapped = staging.getMappedRange();
        for (let r = 0; r < headRows; r++) out.push(new Float32Array(mapped.slice(r * rowBytes, (r + 1) * rowBytes)));
        staging.unmap();
      } else if (waitForState) {
        await this.landing;
        tr = performance.now();
      }
    } catch (e) {
      throw await fail(this.engine.lostReason ?? `read-back failed: ${(e as Error).message}`);
    }
    Object.assign(this.lastCall, { encodeMs: t1 - t0, waitMs: tr - tw, readMs: performance.now() - tr });
    return out;
  }

  /**
   * Copies the state read back into `read` into `host` once mapped, as of
   * the tokens consumed so far (unless reset or importState came first),
   * and frees `read` for a later read-back. Read-backs land in the order
   * they were submitted (one queue), each after the one before.
   */
  private land(read: StateStaging, layout: StateLayout): void {
    const generation = this.generation;
    const position = this.position;
    const copied = read.buffer.mapAsync(GPUMapMode.READ).then(() => {
      if (generation === this.generation && !this.disposed) {
        this.copyLayers(read.buffer.getMappedRange(), layout);
        this.pending.splice(0, position - this.host.position);
        [this.host, this.incoming] = [this.incoming, this.host];
        this.host.position = position;
      }
      read.buffer.unmap();
    });
    // a failed read-back (device lost) leaves `host` as it was, the tokens since then in `pending`
    read.free = copied.catch(() => undefined);
    this.landing = copied;
  }

  /** A read-back (laid out as in the state buffer) into `incoming`. */
  private copyLayers(mapped: ArrayBuffer, layout: StateLayout): void {
    this.incoming.layers.forEach((layer, l) => {
      const o = l * layout.stride;
      layer.S.set(new Float32Array(mapped, o, layer.S.length));
      layer.conv.set(new Float32Array(mapped, o + layout.convOffset, layer.conv.length));
    });
  }

  async prefill(tokens: ArrayLike<number>, want: LogitsWanted = "last"): Promise<Float32Array[]> {
    const f = await this.live();
    checkTokens(tokens, this.engine.config.vocabSize);
    const per = want === "all" ? f.logitRows : f.maxTokens;
    const out: Float32Array[] = [];
    const since = this.position;
    for (let i = 0; i < tokens.length; i += per) {
      const n = Math.min(per, tokens.length - i);
      const isLast = i + n >= tokens.length;
      const headRows = want === "all" ? n : want === "last" && isLast ? 1 : 0;
      // a chunk before the last neither waits for its state nor, without logits, for the GPU: the next
      // chunk is recorded meanwhile, and its state copied out on the host while the GPU runs the next
      out.push(...(await this.run(f, Array.prototype.slice.call(tokens, i, i + n), headRows, true, since, isLast)));
    }
    return out;
  }

  /** Once the last read-back submitted has landed (or failed: then, with the device lost, this throws). */
  private async settled(): Promise<void> {
    await this.landing.catch(() => undefined);
    if (this.engine.lostReason) throw this.lost(this.engine.lostReason);
  }

  async step(token: number): Promise<Float32Array> {
    const f = await this.live();
    checkTokens([token], this.engine.config.vocabSize);
    return (await this.run(f, [token], 1, false))[0];
  }

  async exportState(): Promise<ModelState> {
    const f = await this.live();
    await this.settled();
    // (the call waits for its read-back, and fails as the device does)
    if (this.pending.length) await this.run(f, [], 0, true);
    return copyState(this.host);
  }

  async importState(state: ModelState): Promise<void> {
    const f = await this.live();
    const c = this.engine.config;
    const sLen = c.numHeads * c.headKeyDim * c.headValueDim;
    if (!Number.isInteger(state.position) || state.position < 0 || state.layers.length !== c.numLayers)
      throw new MetalaError("format", `state does not fit this model: ${state.layers.length} layers at position ${state.position}, the model has ${c.numLayers} layers`);
    state.layers.forEach((l, i) => {
      if (l.S.length !== sLen || l.conv.length !== 3 * c.hiddenSize)
        throw new MetalaError("format", `state does not fit this model: layer ${i} needs S of ${sLen} and conv of ${3 * c.hiddenSize} floats`);
    });
    const { device } = this.engine.ctx;
    // become resident first (submitted before the writes below, so the writes land after the swap)
    const enc = device.createCommandEncoder();
    this.engine.swapSessions(this, f, enc);
    device.queue.submit([enc.finish()]);
    const q = device.queue;
    const { state: buffer, stateLayout } = f.buffers;
    state.layers.forEach((l, i) => {
      q.writeBuffer(buffer, i * stateLayout.stride, Float32Array.from(l.S));
      q.writeBuffer(buffer, i * stateLayout.stride + stateLayout.convOffset, Float32Array.from(l.conv));
    });
    this.host = copyState(state);
    this.pending = [];
    this.generation++;
  }

  reset(): void {
    this.host = emptyState(this.engine.config);
    this.pending = [];
    this.generation++;
    this.zero = true;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.engine.forget(this);
    this.prepared = null;
    this.own?.destroy();
  }
}

function copyState(s: ModelState): ModelState {
  return { position: s.position, layers: s.layers.map((l) => ({ S: l.S.slice(), conv: l.conv.slice() })) };
}

/**
 * The GPU engine: weights uploaded once (f32), pipelines compiled once, and
 * per session buffers for chunks of up to `chunkTokens` tokens. Throws a
 * MetalaError of kind "device" when there is no WebGPU adapter, or when a
 * kernel cannot be built on it (its workgroup memory, for instance).
 */
export async function createWebGpuEngine(source: WeightSource, opts: WebGpuEngineOptions = {}): Promise<WebGpuEngine> {
  const dtype = opts.dtype ?? "f32";
  if (!["f32", "f16", "q8", "q4"].includes(dtype)) throw new MetalaError("usage", `--dtype ${dtype} is not available on the webgpu engine (f32, f16, q8, q4)`);
  const c = source.config;
  checkShape(c);
  const ctx = opts.context ?? (await openDevice());
  const maxBinding = Math.min(ctx.info.limits!.maxStorageBufferBindingSize, opts.maxBindingBytes ?? Infinity);
  // the widest per-token activation (GLU hidden, or the projections) must fit one binding
  const widest = Math.max(c.gluDim, 2 * c.keyDim + 2 * c.hiddenSize) * 4;
  const chunkTokens = Math.max(64, Math.min(opts.chunkTokens ?? 4096, Math.floor(maxBinding / widest / 64) * 64));
  let weights: GpuWeights | undefined;
  try {
    const pipelines = pipelinesFor(ctx.device);
    weights = await uploadWeights(ctx.device, source, maxBinding, dtype);
    const engine = new GpuEngine(ctx, c, pipelines, weights, chunkTokens, !opts.context, opts.minSplitK, opts.glaParallelMax);
    // built now, not at the first call: a device whose limits a kernel exceeds fails the load, which auto mode survives (runtime/load.ts)
    await engine.forward();
    return engine;
  } catch (e) {
    weights?.destroy();
    if (!opts.context) ctx.device.destroy();
    throw e;
  }
}
