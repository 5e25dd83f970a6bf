import type { Engine, EngineSession } from "../engine.js";
import type { CostCache } from "./cost-cache.js";
import type { CostTable, EngineCosts } from "./costs.js";

export interface CalibrationOptions {
  /** Stop lengthening the prefill once one run takes longer than this (default 250 ms). */
  budgetMs?: number;
  /** Longest prefill measured (default 4096). */
  maxTokens?: number;
}

function now(): number {
  return typeof performance !== "undefined" ? performance.now() : Date.now();
}

/** Fixed, spread-out token ids: timing must not depend on which tokens, and must be repeatable. */
function probeTokens(n: number, vocab: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 7919 + 13) % vocab);
}

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = now();
  await f();
  return now() - t;
}

/**
 * Measures one engine on the loaded model: prefill at 1, 4, 16, 64, ... tokens
 * (each the faster of two runs, the first of which also pays any one-off
 * pipeline compilation) and the median of 8 decode steps.
 */
export async function measureEngine(engine: Engine, options: CalibrationOptions = {}): Promise<EngineCosts> {
  const budget = options.budgetMs ?? 250;
  const maxTokens = options.maxTokens ?? 4096;
  const vocab = engine.config.vocabSize;
  const s = engine.createSession();
  try {
    const prefill: EngineCosts["prefill"] = [];
    for (let t = 1; t <= maxTokens; t *= 4) {
      const tokens = probeTokens(t, vocab);
      let best = Infinity;
      for (let rep = 0; rep < 2; rep++) {
        s.reset();
        best = Math.min(best, await timed(() => s.prefill(tokens, "last")));
      }
      prefill.push({ tokens: t, ms: best });
      if (best > budget) break;
    }
    return { prefill, stepMs: await medianStep(s, vocab) };
  } finally {
    s.dispose();
  }
}

async function medianStep(s: EngineSession, vocab: number): Promise<number> {
  s.reset();
  await s.prefill(probeTokens(4, vocab), "none");
  await s.step(1);
  await s.step(2);
  const times: number[] = [];
  for (let i = 0; i < 8; i++) times.push(await timed(() => s.step((i * 31 + 7) % vocab)));
  times.sort((a, b) => a - b);
  return (times[3] + times[4]) / 2;
}

/** Time to move a state from `a` to `b` (export + import), the faster of two runs. */
export async function measureHandoff(a: Engine, b: Engine): Promise<number> {
  const sa = a.createSession();
  const sb = b.createSession();
  try {
    await sa.prefill(probeTokens(4, a.config.vocabSize), "none");
    let best = Infinity;
    for (let rep = 0; rep < 2; rep++) best = Math.min(best, await timed(async () => sb.importState(await sa.exportState())));
    return best;
  } finally {
    sa.dispose();
    sb.dispose();
  }
}

/**
 * Measured costs of these engines on this model, from the cache when this
 * device (the engines' descriptions), model and dtype were measured before.
 */
export async function calibratedCosts(engines: Engine[], fingerprint: string, dtype: string, cache: CostCache | null): Promise<CostTable> {
  const key = [fingerprint, dtype, ...engines.map((e) => `${e.kind}=${e.description}`).sort()].join("|");
  const cached = await cache?.get(key);
  if (cached && engines.every((e) => cached.engines[e.kind])) return cached;
  const table: CostTable = { engines: {}, handoffMs: 0 };
  for (const e of engines) table.engines[e.kind] = await measureEngine(e);
  table.handoffMs = await measureHandoff(engines[0], engines[1]);
  await cache?.set(key, table);
  return table;
}
