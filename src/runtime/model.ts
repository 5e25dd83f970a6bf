import type { Engine, EngineKind, ModelState } from "../engine.js";
import { MetalaError } from "../errors.js";
import type { MetalaConfig } from "../model/config.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { Generation, type GenerateOptions, type GenerationResult } from "../generate/generate.js";
import type { CostTable } from "./costs.js";
import { Scheduler, type SchedulerPolicy } from "./scheduler.js";
import { StateSequence } from "./session.js";

/** What a Model is assembled from (loadModel builds this from a folder; tests build it from their own engines). */
export interface ModelParts {
  config: MetalaConfig;
  engines: Engine[];
  tokenizer: Tokenizer | null;
  fingerprint: string;
  policy?: SchedulerPolicy;
  costs?: CostTable | null;
  /** Makes a CPU engine if the GPU fails while no CPU engine is loaded. */
  makeCpuEngine?: () => Promise<Engine>;
  onWarning?: (message: string) => void;
  /** Longest prefill piece per engine call (abort is checked between pieces). */
  prefillChunk?: number;
  /** GPU tokens between read-backs of the state to the host (bounds the replay after a GPU failure). */
  journalLimit?: number;
  /** Called by dispose, after the engines (closing the weight files). */
  close?: () => Promise<void>;
}

/** A prompt: text (needs the model's tokenizer) or token ids. */
export type Prompt = string | readonly number[];

export interface SessionGenerateOptions extends GenerateOptions {
  /**
   * Add the tokenizer's special tokens (BOS) around a text prompt. Default:
   * only at the start of a sequence, not when continuing one.
   */
  addSpecialTokens?: boolean;
}

/**
 * One loaded model: its weights live in the engines once, shared by any
 * number of sessions, each with its own few-MB state.
 */
export class Model {
  readonly config: MetalaConfig;
  readonly tokenizer: Tokenizer | null;
  /** Identifies the weights; snapshots carry it (runtime/fingerprint.ts). */
  readonly fingerprint: string;
  readonly scheduler: Scheduler;
  private readonly sessions = new Set<Session>();
  private disposed = false;

  constructor(private readonly parts: ModelParts) {
    if (parts.engines.length === 0) throw new MetalaError("device", "no engine to run the model on");
    this.config = parts.config;
    this.tokenizer = parts.tokenizer;
    this.fingerprint = parts.fingerprint;
    const engines = new Map<EngineKind, Engine>(parts.engines.map((e) => [e.kind, e]));
    const noCpu = async (): Promise<Engine> => {
      throw new MetalaError("device", "the GPU failed and no CPU engine can be loaded");
    };
    this.scheduler = new Scheduler(
      engines,
      parts.policy ?? { prefill: "auto", decode: "auto" },
      parts.costs ?? null,
      parts.makeCpuEngine ?? noCpu,
      parts.onWarning ?? (() => {}),
    );
  }

  /** The engines loaded, with what each runs on. */
  get engines(): { kind: EngineKind; description: string }[] {
    return this.scheduler.allEngines().map((e) => ({ kind: e.kind, description: e.description }));
  }

  createSession(): Session {
    if (this.disposed) throw new MetalaError("usage", "this model was disposed");
    const s = new Session(this, new StateSequence({ config: this.config, fingerprint: this.fingerprint, scheduler: this.scheduler, prefillChunk: this.parts.prefillChunk, journalLimit: this.parts.journalLimit }));
    this.sessions.add(s);
    return s;
  }

  /** A new session resumed from a snapshot. */
  restoreSession(snapshot: Uint8Array): Session {
    const s = this.createSession();
    try {
      s.restore(snapshot);
    } catch (e) {
      s.dispose();
      throw e;
    }
    return s;
  }

  /** Generates on a fresh session that is disposed when the generation ends. */
  async *generate(prompt: Prompt, options: SessionGenerateOptions = {}): AsyncGenerator<{ token: number | null; text: string }, GenerationResult> {
    const s = this.createSession();
    try {
      const g = s.generate(prompt, options);
      for await (const piece of g) yield piece;
      return g.result;
    } finally {
      s.dispose();
    }
  }

  /** Generates on a fresh session and returns the whole text. */
  async generateText(prompt: Prompt, options: SessionGenerateOptions = {}): Promise<GenerationResult> {
    const s = this.createSession();
    try {
      return await s.generate(prompt, options).complete();
    } finally {
      s.dispose();
    }
  }

  /** @internal */
  forget(s: Session): void {
    this.sessions.delete(s);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of [...this.sessions]) s.dispose();
    for (const e of this.scheduler.allEngines()) {
      try {
        await e.dispose();
      } catch {
        // A lost GPU may refuse to free what it no longer has.
      }
    }
    await this.parts.close?.();
  }
}

/** One sequence on a model: its state persists from one generate call to the next, like a conversation. */
export class Session {
  private busy = false;

  constructor(
    readonly model: Model,
    private readonly seq: StateSequence,
  ) {}

  /** Tokens in the state so far (the last generated token counts once the session continues). */
  get position(): number {
    return this.seq.position;
  }

  /** Where the state is now: an engine kind, or "host". */
  get location(): string {
    return this.seq.location;
  }

  /**
   * Continues the sequence with `prompt` and generates. Iterate the result
   * for streamed pieces, or call its `complete()` for the whole text.
   */
  generate(prompt: Prompt, options: SessionGenerateOptions = {}): Generation {
    const tokens = this.encode(prompt, options.addSpecialTokens);
    const tk = this.model.tokenizer;
    const decoder = tk ? tk.createDecodeStream({ skipSpecialTokens: options.skipSpecialTokens ?? true }) : null;
    const eos = tk?.eosTokenId ?? this.model.config.eosTokenId;
    return new Generation(this.seq, tokens, options, eos, decoder, { enter: () => this.enter(), exit: () => this.exit() });
  }

  /** Consumes `prompt` into the state without generating (e.g. a system prompt to snapshot). */
  async feed(prompt: Prompt, options: { addSpecialTokens?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    const tokens = this.encode(prompt, options.addSpecialTokens);
    this.enter();
    try {
      this.seq.append(tokens);
      await this.seq.flush(options.signal);
    } finally {
      this.exit();
    }
  }

  /** A compact binary of the state; restore it here, in another session, or in another process with the same model. */
  async snapshot(): Promise<Uint8Array> {
    this.enter();
    try {
      return await this.seq.snapshot();
    } finally {
      this.exit();
    }
  }

  restore(snapshot: Uint8Array): void {
    this.checkIdle();
    this.seq.restore(snapshot);
  }

  /** A new session starting from this one's state. */
  async fork(): Promise<Session> {
    return this.model.restoreSession(await this.snapshot());
  }

  /** The engine-neutral state (per layer S and conv, f32), consuming pending tokens first. */
  async exportState(): Promise<ModelState> {
    this.enter();
    try {
      return await this.seq.exportState();
    } finally {
      this.exit();
    }
  }

  reset(): void {
    this.checkIdle();
    this.seq.reset();
  }

  dispose(): void {
    this.seq.dispose();
    this.model.forget(this);
  }

  private encode(prompt: Prompt, addSpecial: boolean | undefined): number[] {
    if (typeof prompt !== "string") return [...prompt];
    const tk = this.model.tokenizer;
    if (!tk) throw new MetalaError("input", "this model has no tokenizer: give the prompt as token ids");
    const atStart = this.seq.position === 0 && this.seq.pendingTokens.length === 0;
    return tk.encode(prompt, { addSpecialTokens: addSpecial ?? atStart });
  }

  private checkIdle(): void {
    if (this.busy) throw new MetalaError("usage", "this session is busy with a generation");
  }

  /** One call or generation at a time: interleaving two on one sequence would mix their tokens. */
  private enter(): void {
    this.checkIdle();
    this.busy = true;
  }

  private exit(): void {
    this.busy = false;
  }
}
