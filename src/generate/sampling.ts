import { MetalaError } from "../errors.js";
import type { Prng } from "./prng.js";

/**
 * How the next token is chosen from the logits. Temperature 0 (the default)
 * is greedy decoding; the filters apply only when sampling.
 */
export interface SamplingOptions {
  /** 0 = greedy (argmax); otherwise logits are divided by it before the softmax. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = off). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 = off). */
  topP?: number;
  /** Drop tokens whose probability is below minP times the top token's (0 = off). */
  minP?: number;
  /** >1 discourages tokens already in the context (the CTRL / Hugging Face rule). 1 = off. */
  repetitionPenalty?: number;
}

export interface ResolvedSampling {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
}

export function resolveSampling(o: SamplingOptions): ResolvedSampling {
  const r = {
    temperature: o.temperature ?? 0,
    topK: o.topK ?? 0,
    topP: o.topP ?? 1,
    minP: o.minP ?? 0,
    repetitionPenalty: o.repetitionPenalty ?? 1,
  };
  check(Number.isFinite(r.temperature) && r.temperature >= 0, "temperature must be a number >= 0", r.temperature);
  check(Number.isInteger(r.topK) && r.topK >= 0, "topK must be an integer >= 0", r.topK);
  check(r.topP > 0 && r.topP <= 1, "topP must be in (0, 1]", r.topP);
  check(r.minP >= 0 && r.minP <= 1, "minP must be in [0, 1]", r.minP);
  check(Number.isFinite(r.repetitionPenalty) && r.repetitionPenalty > 0, "repetitionPenalty must be a number > 0", r.repetitionPenalty);
  return r;
}

function check(ok: boolean, what: string, got: number): void {
  if (!ok) throw new MetalaError("usage", `${what}, got ${got}`);
}

/** Index of the largest logit; ties go to the lowest token id, so every engine breaks them alike. */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/**
 * Picks the next token. Everything is computed in float64 from the engine's
 * f32 logits, and the final draw walks the kept tokens in token-id order, not
 * in probability order: engines whose logits differ by ~1e-5 then only
 * disagree when the uniform draw lands within ~1e-5 of the boundary between
 * two tokens (odds of order 1e-5 per sampled token), or when two logits tie
 * to within that difference exactly at a top-k/top-p/min-p cut. Sorting by
 * probability for the draw would instead swap whole intervals whenever two
 * near-equal tokens change order, which happens often.
 *
 * `context` holds the tokens the repetition penalty looks at.
 */
export function sampleToken(logits: ArrayLike<number>, s: ResolvedSampling, rng: Prng | null, context: Iterable<number>): number {
  const n = logits.length;
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = logits[i];
  if (s.repetitionPenalty !== 1) {
    const seen = new Set<number>();
    for (const t of context) if (t >= 0 && t < n && !seen.has(t)) {
      seen.add(t);
      x[t] = x[t] > 0 ? x[t] / s.repetitionPenalty : x[t] * s.repetitionPenalty;
    }
  }
  if (s.temperature === 0 || rng === null) return argmax(x);

  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, x[i]);
  const p = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    p[i] = Math.exp((x[i] - max) / s.temperature);
    sum += p[i];
  }
  for (let i = 0; i < n; i++) p[i] /= sum;

  const keep = keptTokens(p, s);
  let total = 0;
  for (const i of keep) total += p[i];
  const u = rng.nextFloat() * total;
  let acc = 0;
  for (const i of keep) {
    acc += p[i];
    if (u < acc) return i;
  }
  return keep[keep.length - 1];
}

/** The tokens that survive top-k, top-p and min-p, in increasing token id. */
function keptTokens(p: Float64Array, s: ResolvedSampling): number[] {
  const n = p.length;
  const filtering = s.topK > 0 || s.topP < 1 || s.minP > 0;
  if (!filtering) return Array.from({ length: n }, (_, i) => i);

  // Stable order: probability descending, then token id ascending.
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => p[b] - p[a] || a - b);
  let count = s.topK > 0 ? Math.min(s.topK, n) : n;
  if (s.topP < 1) {
    // Relative to the mass top-k kept, as if renormalised after top-k (Hugging Face's order).
    let mass = 0;
    for (let r = 0; r < count; r++) mass += p[order[r]];
    let acc = 0;
    for (let r = 0; r < count; r++) {
      acc += p[order[r]];
      if (acc >= s.topP * mass) {
        count = r + 1;
        break;
      }
    }
  }
  if (s.minP > 0) {
    const floor = s.minP * p[order[0]];
    let r = 1;
    while (r < count && p[order[r]] >= floor) r++;
    count = r;
  }
  return order.slice(0, count).sort((a, b) => a - b);
}
