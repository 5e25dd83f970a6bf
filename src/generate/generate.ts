import { MetalaError } from "../errors.js";
import type { DecodeStream } from "../tokenizer/tokenizer.js";
import { Prng, randomSeed } from "./prng.js";
import { resolveSampling, sampleToken, type SamplingOptions } from "./sampling.js";
import { StopStringFilter } from "./stop.js";

export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate (default 128). */
  maxNewTokens?: number;
  /** Seeds the sampler: the same seed, prompt and options give the same tokens on every engine. Random when absent. */
  seed?: number;
  /** Generation ends before the first of these strings; the string itself is not returned. */
  stop?: readonly string[];
  /** Token ids that end generation (besides the model's EOS unless ignoreEos). */
  stopTokens?: readonly number[];
  /** Keep going past the EOS token. */
  ignoreEos?: boolean;
  signal?: AbortSignal;
  /** Keep special tokens (EOS, chat markers) out of the text. Default true. */
  skipSpecialTokens?: boolean;
}

export type FinishReason = "length" | "eos" | "stop";

/**
 * One generated token and the text it releases ("" while a character or a
 * possible stop string is incomplete). The last piece may carry only text
 * held back until the end, with token null.
 */
export interface GenerationPiece {
  token: number | null;
  text: string;
}

/** What one consume of tokens cost, as the runtime reports it. */
export interface ConsumeReport {
  engine: string;
  tokens: number;
  ms: number;
}

/**
 * What the generation loop drives: a sequence that consumes tokens and gives
 * the logits of the next one. Tokens appended are consumed lazily, at the next
 * call to `next`, so the last generated token costs nothing until the sequence
 * continues.
 */
export interface TokenSequence {
  append(tokens: readonly number[]): void;
  next(signal?: AbortSignal): Promise<{ logits: Float32Array; report: ConsumeReport }>;
}

export interface GenerationStats {
  promptTokens: number;
  generatedTokens: number;
  prefillEngine: string;
  prefillMs: number;
  /** Engines that ran decode steps, in order of use (more than one after a fallback). */
  decodeEngines: string[];
  decodeMs: number;
  /** Time from the call to the first generated token. */
  timeToFirstTokenMs: number;
}

export interface GenerationResult {
  text: string;
  tokens: number[];
  finishReason: FinishReason;
  stats: GenerationStats;
}

function now(): number {
  return typeof performance !== "undefined" ? performance.now() : Date.now();
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new MetalaError("aborted", "generation aborted");
}

/**
 * One generation request, streamed: iterate it for pieces (once), then read
 * `result`. Without a decoder it is token-level (every piece's text is "").
 */
/**
 * What every streamed generation shares, in process or in a worker: it is
 * iterated once, and its result is readable once iteration has ended.
 * Subclasses produce the pieces in `stream()` and set `finished`.
 */
export abstract class StreamedGeneration implements AsyncIterable<GenerationPiece> {
  private started = false;
  protected finished: GenerationResult | null = null;

  /** The result, once iteration has ended normally. */
  get result(): GenerationResult {
    if (!this.finished) throw new MetalaError("usage", "generation result read before the generation finished");
    return this.finished;
  }

  /** Runs the whole generation and returns its result. */
  async complete(): Promise<GenerationResult> {
    for await (const _ of this);
    return this.result;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<GenerationPiece> {
    if (this.started) throw new MetalaError("usage", "a generation can be iterated only once");
    this.started = true;
    yield* this.stream();
  }

  protected abstract stream(): AsyncGenerator<GenerationPiece>;
}

export class Generation extends StreamedGeneration {
  constructor(
    private readonly seq: TokenSequence,
    private readonly prompt: readonly number[],
    private readonly options: GenerateOptions,
    private readonly eosTokenId: number | null,
    private readonly decoder: DecodeStream | null,
    /** Marks the sequence busy while the generation runs. */
    private readonly guard: { enter(): void; exit(): void } = { enter() {}, exit() {} },
  ) {
    super();
  }

  protected async *stream(): AsyncGenerator<GenerationPiece> {
    this.guard.enter();
    try {
      yield* this.run();
    } finally {
      this.guard.exit();
    }
  }

  private async *run(): AsyncGenerator<GenerationPiece> {
    const o = this.options;
    const maxNew = o.maxNewTokens ?? 128;
    if (!Number.isInteger(maxNew) || maxNew < 0) throw new MetalaError("usage", `maxNewTokens must be an integer >= 0, got ${maxNew}`);
    const sampling = resolveSampling(o);
    const rng = sampling.temperature > 0 ? new Prng(o.seed ?? randomSeed()) : null;
    const stopIds = new Set(o.stopTokens ?? []);
    if (!o.ignoreEos && this.eosTokenId !== null) stopIds.add(this.eosTokenId);
    const filter = new StopStringFilter(o.stop ?? []);
    const context = [...this.prompt];
    const t0 = now();
    const stats: GenerationStats = {
      promptTokens: this.prompt.length,
      generatedTokens: 0,
      prefillEngine: "",
      prefillMs: 0,
      decodeEngines: [],
      decodeMs: 0,
      timeToFirstTokenMs: 0,
    };
    const tokens: number[] = [];
    let text = "";
    let reason: FinishReason = "length";

    checkAbort(o.signal);
    this.seq.append(this.prompt);
    for (let i = 0; i < maxNew; i++) {
      checkAbort(o.signal);
      const { logits, report } = await this.seq.next(o.signal);
      if (i === 0) {
        stats.prefillEngine = report.engine;
        stats.prefillMs = report.ms;
      } else {
        stats.decodeMs += report.ms;
        if (stats.decodeEngines[stats.decodeEngines.length - 1] !== report.engine) stats.decodeEngines.push(report.engine);
      }
      checkAbort(o.signal);
      const token = sampleToken(logits, sampling, rng, context);
      if (i === 0) stats.timeToFirstTokenMs = now() - t0;
      context.push(token);
      tokens.push(token);
      this.seq.append([token]);
      stats.generatedTokens++;
      if (stopIds.has(token)) {
        reason = "eos";
        yield { token, text: "" };
        break;
      }
      const released = filter.push(this.decoder ? this.decoder.push(token) : "");
      text += released.text;
      yield { token, text: released.text };
      if (released.stopped) {
        reason = "stop";
        break;
      }
    }
    if (reason !== "stop") {
      // Nothing follows: a held-back partial character or stop-string prefix is final text now.
      const flushed = filter.push(this.decoder ? this.decoder.flush() : "");
      let tail = flushed.text;
      if (flushed.stopped) reason = "stop";
      else tail += filter.end();
      if (tail) {
        text += tail;
        yield { token: null, text: tail };
      }
    }
    this.finished = { text, tokens, finishReason: reason, stats };
  }
}
