import { emptyState, type EngineKind, type EngineSession, type LogitsWanted, type ModelState } from "../engine.js";
import { MetalaError } from "../errors.js";
import type { MetalaConfig } from "../model/config.js";
import type { ConsumeReport, TokenSequence } from "../generate/generate.js";
import { EngineFailure, canBeLost, type Scheduler } from "./scheduler.js";
import { decodeSnapshot, encodeSnapshot } from "./snapshot.js";

export interface SequenceContext {
  config: MetalaConfig;
  fingerprint: string;
  scheduler: Scheduler;
  /** Longest piece of a prefill run in one engine call: abort is checked between pieces (default 1024). */
  prefillChunk?: number;
  /** Tokens a GPU may consume before its state is copied back to the host, bounding the replay after a failure (default 4096). */
  journalLimit?: number;
}

function now(): number {
  return typeof performance !== "undefined" ? performance.now() : Date.now();
}

/**
 * The state of one sequence, moved between engines as the scheduler decides.
 * The state lives inside the engine `holder`, or on the host when holder is
 * null: then it is `base` (null: the empty state) advanced by the tokens of
 * `journal`.
 *
 * While a GPU holds it, `base` + `journal` are kept too: the last state known
 * on the host and the tokens consumed since. If the GPU fails, a CPU engine
 * imports `base` and replays the journal, so the request continues from
 * exactly the state the GPU had reached.
 */
export class StateSequence implements TokenSequence {
  private readonly sessions = new Map<EngineKind, EngineSession>();
  private holder: EngineKind | null = null;
  private base: ModelState | null = null;
  private journal: number[] = [];
  private pending: number[] = [];
  private consumed = 0;
  private lastConsumed = 0;
  private disposed = false;

  constructor(private readonly ctx: SequenceContext) {}

  /** Tokens consumed into the state (appended tokens not yet consumed are not counted). */
  get position(): number {
    return this.consumed;
  }

  /** Tokens appended but not yet consumed: the last generated token waits here until the sequence continues. */
  get pendingTokens(): readonly number[] {
    return this.pending;
  }

  /** Where the state is now: an engine kind, or "host". */
  get location(): EngineKind | "host" {
    return this.holder ?? "host";
  }

  append(tokens: readonly number[]): void {
    this.checkLive();
    const vocab = this.ctx.config.vocabSize;
    for (const t of tokens)
      if (!Number.isInteger(t) || t < 0 || t >= vocab)
        throw new MetalaError("input", `token id ${t} is out of range for this model (vocab size ${vocab})`);
    this.pending.push(...tokens);
  }

  async next(signal?: AbortSignal): Promise<{ logits: Float32Array; report: ConsumeReport }> {
    if (this.pending.length === 0)
      throw new MetalaError("input", "nothing to consume: the prompt is empty and no token is pending");
    const t0 = now();
    const { logits, kind } = await this.consume("last", signal);
    return { logits: logits!, report: { engine: kind, tokens: this.lastConsumed, ms: now() - t0 } };
  }

  /** Consumes the pending tokens without computing logits (before a snapshot, say). */
  async flush(signal?: AbortSignal): Promise<void> {
    if (this.pending.length > 0) await this.consume("none", signal);
  }

  /**
   * Consumes all pending tokens: one token is a decode step, more are a
   * prefill, run in pieces of at most `prefillChunk`. On an engine failure
   * the scheduler marks it lost and the loop goes on from the state it had
   * reached, on another engine. An abort between pieces leaves the pieces
   * already consumed in the state (see `position`) and drops the rest.
   */
  private async consume(want: LogitsWanted, signal?: AbortSignal): Promise<{ logits: Float32Array | null; kind: EngineKind }> {
    this.checkLive();
    const tokens = this.pending;
    this.pending = [];
    this.lastConsumed = tokens.length;
    const sched = this.ctx.scheduler;
    const chunk = this.ctx.prefillChunk ?? 1024;
    let done = 0;
    let logits: Float32Array | null = null;
    let kind: EngineKind = sched.decodeKind();
    while (done < tokens.length) {
      if (signal?.aborted) throw new MetalaError("aborted", "generation aborted");
      kind = tokens.length === 1 ? sched.decodeKind() : sched.prefillKind(tokens.length - done, this.holder);
      try {
        await this.moveTo(kind);
        const piece = tokens.slice(done, done + chunk);
        const last = done + piece.length === tokens.length;
        logits = await sched.run(kind, async () => {
          const s = this.sessions.get(kind)!;
          // Timed inside the engine's queue: waiting for another session's call is not this engine's cost.
          const t = now();
          let out: Float32Array | null = null;
          if (tokens.length === 1) out = await s.step(piece[0]);
          else {
            const all = await s.prefill(piece, last ? want : "none");
            if (last && want !== "none") out = all[all.length - 1];
          }
          sched.observe(kind, tokens.length === 1 ? "step" : "prefill", piece.length, now() - t);
          return out;
        });
        done += piece.length;
        this.consumed += piece.length;
        if (canBeLost(kind)) {
          this.journal.push(...piece);
          if (this.journal.length >= (this.ctx.journalLimit ?? 4096)) await this.refreshCheckpoint(kind);
        }
      } catch (e) {
        if (!(e instanceof EngineFailure)) throw e;
        await sched.markLost(e);
      }
    }
    return { logits, kind };
  }

  /** Bounds the replay after a GPU failure: the state is read back to the host now and then. */
  private async refreshCheckpoint(kind: EngineKind): Promise<void> {
    this.base = await this.ctx.scheduler.run(kind, () => this.sessions.get(kind)!.exportState());
    this.journal = [];
  }

  private sessionOn(kind: EngineKind): EngineSession {
    let s = this.sessions.get(kind);
    if (!s) {
      s = this.ctx.scheduler.engine(kind).createSession();
      this.sessions.set(kind, s);
    }
    return s;
  }

  private dropSession(kind: EngineKind): void {
    const s = this.sessions.get(kind);
    this.sessions.delete(kind);
    try {
      s?.dispose();
    } catch {
      // A session on a lost device may fail to free what the device already freed.
    }
  }

  /**
   * Puts the state into engine `kind`: exported from the engine that holds
   * it, or, if that engine was lost, rebuilt from `base` and the journal.
   * Nothing is forgotten until the new engine has the state, so a failure
   * here leaves the state recoverable on the host.
   */
  private async moveTo(kind: EngineKind): Promise<void> {
    const sched = this.ctx.scheduler;
    if (this.holder === kind && !sched.isLost(kind)) return;
    if (this.holder !== null) {
      const from = this.holder;
      if (!sched.isLost(from)) {
        this.base = await sched.run(from, () => this.sessions.get(from)!.exportState());
        this.journal = [];
      }
      this.dropSession(from);
      this.holder = null;
    }
    const base = this.base;
    const replay = this.journal;
    await sched.run(kind, async () => {
      const s = this.sessionOn(kind);
      if (base) await s.importState(base);
      else s.reset();
      if (replay.length > 0) await s.prefill(replay, "none");
    });
    this.holder = kind;
    if (!canBeLost(kind)) {
      this.base = null;
      this.journal = [];
    }
  }

  /** The state now, engine-neutral (pending tokens are consumed first). */
  async exportState(): Promise<ModelState> {
    await this.flush();
    const sched = this.ctx.scheduler;
    if (this.holder === null && this.journal.length === 0) return this.base ?? emptyState(this.ctx.config);
    for (;;) {
      try {
        if (this.holder === null || sched.isLost(this.holder)) await this.moveTo(sched.decodeKind());
        const holder = this.holder!;
        return await sched.run(holder, () => this.sessions.get(holder)!.exportState());
      } catch (e) {
        if (!(e instanceof EngineFailure)) throw e;
        await sched.markLost(e);
      }
    }
  }

  /** A compact binary of the state (runtime/snapshot.ts), for restore, fork, or resuming later. */
  async snapshot(): Promise<Uint8Array> {
    return encodeSnapshot(await this.exportState(), this.ctx.config, this.ctx.fingerprint);
  }

  /** Replaces the state by a snapshot's; refuses snapshots of other models, corrupt or truncated ones. */
  restore(bytes: Uint8Array): void {
    this.checkLive();
    const state = decodeSnapshot(bytes, this.ctx.config, this.ctx.fingerprint);
    this.clear();
    this.base = state;
    this.consumed = state.position;
  }

  /** Back to the empty state. */
  reset(): void {
    this.checkLive();
    this.clear();
  }

  private clear(): void {
    for (const k of [...this.sessions.keys()]) this.dropSession(k);
    this.holder = null;
    this.base = null;
    this.journal = [];
    this.pending = [];
    this.consumed = 0;
  }

  dispose(): void {
    if (this.disposed) return;
    this.clear();
    this.disposed = true;
  }

  private checkLive(): void {
    if (this.disposed) throw new MetalaError("usage", "this session was disposed");
  }
}
