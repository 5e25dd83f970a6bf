import { MetalaError } from "../errors.js";
import { Prng } from "../generate/prng.js";

/**
 * The multi-query associative recall task of Zoology (Arora et al. 2023), the
 * recall benchmark of the MetaLA paper: a sequence opens with N key-value
 * pairs (keys from the first half of the vocabulary, values from the second),
 * then the keys are asked again, each once, at gaps drawn from a power law
 * (short gaps likelier); every other position holds a random token. The model
 * must predict, at each queried key, the value that followed it.
 */
export interface MqarTask {
  vocabSize: number;
  seqLen: number;
  numPairs: number;
  /** Exponent of the gap distribution, p(gap g) ~ a * g^(a-1); Zoology's default 0.01. */
  powerA: number;
}

export interface MqarQuery {
  /** The input position holding the queried key: the logits there must put the value first. */
  position: number;
  value: number;
}

export interface MqarExample {
  inputs: Int32Array;
  queries: MqarQuery[];
}

export interface MqarSet {
  task: MqarTask;
  seed: number;
  examples: MqarExample[];
}

export function validateTask(t: MqarTask): void {
  const bad = (msg: string): never => {
    throw new MetalaError("usage", `mqar: ${msg}`);
  };
  if (t.seqLen % 2 !== 0) bad(`sequence length ${t.seqLen} must be even`);
  if (t.vocabSize <= t.seqLen) bad(`vocabulary ${t.vocabSize} must be larger than the sequence length ${t.seqLen}`);
  if (4 * t.numPairs > t.seqLen) bad(`${t.numPairs} pairs need a sequence length of at least ${4 * t.numPairs}, got ${t.seqLen}`);
  if (t.numPairs < 1 || t.numPairs > t.vocabSize / 2 - 1) bad(`${t.numPairs} pairs do not fit in a vocabulary of ${t.vocabSize}`);
  if (!(t.powerA > 0 && t.powerA <= 1)) bad(`power-law exponent ${t.powerA} must be in (0, 1]`);
}

/** An integer uniform in [0, n), without the modulo bias. */
function below(rng: Prng, n: number): number {
  const limit = 2 ** 32 - (2 ** 32 % n);
  for (;;) {
    const x = rng.nextUint32();
    if (x < limit) return x % n;
  }
}

/** `count` distinct integers from [lo, hi), in draw order (a partial Fisher-Yates shuffle). */
function distinct(rng: Prng, lo: number, hi: number, count: number): number[] {
  const pool = new Int32Array(hi - lo);
  for (let i = 0; i < pool.length; i++) pool[i] = lo + i;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const j = i + below(rng, pool.length - i);
    const t = pool[i];
    pool[i] = pool[j];
    pool[j] = t;
    out.push(pool[i]);
  }
  return out;
}

/**
 * `count` distinct slots from [0, weights.length), each draw proportional to
 * the weights of the slots not yet drawn (what numpy's choice(replace=False,
 * p=...) samples, which Zoology uses).
 */
function weightedDistinct(rng: Prng, weights: Float64Array, count: number): number[] {
  const w = Float64Array.from(weights);
  let total = w.reduce((a, b) => a + b, 0);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    let r = rng.nextFloat() * total;
    let pick = -1;
    for (let s = 0; s < w.length; s++) {
      if (w[s] === 0) continue;
      pick = s;
      r -= w[s];
      if (r < 0) break;
    }
    out.push(pick);
    total -= w[pick];
    w[pick] = 0;
  }
  return out;
}

/** One example; the layout of Zoology's multiquery_ar with random_non_queries. */
function example(rng: Prng, t: MqarTask, gapWeights: Float64Array): MqarExample {
  const half = Math.floor(t.vocabSize / 2);
  const keys = distinct(rng, 1, half, t.numPairs);
  const values = distinct(rng, half, t.vocabSize, t.numPairs);
  const context = 2 * t.numPairs;
  const inputs = new Int32Array(t.seqLen); // 0 marks a filler slot, filled at the end
  for (let i = 0; i < t.numPairs; i++) {
    inputs[2 * i] = keys[i];
    inputs[2 * i + 1] = values[i];
  }
  const gaps = weightedDistinct(rng, gapWeights, t.numPairs);
  const queries: MqarQuery[] = [];
  for (let i = 0; i < t.numPairs; i++) {
    const position = context + 2 * gaps[i];
    inputs[position] = keys[i];
    queries.push({ position, value: values[i] });
  }
  queries.sort((a, b) => a.position - b.position);
  for (let p = 0; p < t.seqLen; p++) if (inputs[p] === 0) inputs[p] = below(rng, t.vocabSize);
  return { inputs, queries };
}

/** The test set for a seed: the same examples in every JavaScript engine. */
export function generateMqar(task: MqarTask, numExamples: number, seed: number): MqarSet {
  validateTask(task);
  const space = (task.seqLen - 2 * task.numPairs) / 2;
  const gapWeights = new Float64Array(space);
  for (let g = 0; g < space; g++) gapWeights[g] = task.powerA * (g + 1) ** (task.powerA - 1);
  const rng = new Prng(seed);
  const examples: MqarExample[] = [];
  for (let i = 0; i < numExamples; i++) examples.push(example(rng, task, gapWeights));
  return { task: { ...task }, seed, examples };
}
