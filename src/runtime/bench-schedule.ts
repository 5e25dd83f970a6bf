import type { Engine, EngineKind } from "../engine.js";
import type { WeightSource } from "../model/source.js";
import { calibratedCosts } from "./calibrate.js";
import type { CostTable } from "./costs.js";
import { modelFingerprint } from "./fingerprint.js";
import { Model } from "./model.js";
import type { DeviceChoice } from "./scheduler.js";

/**
 * The scheduler's benchmark: time to first token and decode speed of the
 * automatic choice against every forced (prefill, decode) pair, at several
 * prompt lengths, on one set of loaded engines. The target is auto within
 * 10% of the best forced path at every length.
 */
export interface SchedulePath {
  name: string;
  prefill: DeviceChoice;
  decode: DeviceChoice;
}

export interface ScheduleRow {
  path: string;
  promptTokens: number;
  /** Engines the run actually used (auto's choice). */
  prefillEngine: string;
  decodeEngine: string;
  timeToFirstTokenMs: number;
  decodeTokensPerS: number;
  /** Prompt + decode: what a user waits for. */
  totalMs: number;
}

export interface ScheduleBenchOptions {
  lengths: number[];
  decodeTokens: number;
  /** A forced path is not run at longer prompts once one of its runs took longer than this. */
  budgetMs: number;
  dtype: string;
  /** Timed runs per (path, length), taken in turns with the other paths; the fastest counts. */
  repeats?: number;
  onRow?: (row: ScheduleRow) => void;
}

function now(): number {
  return typeof performance !== "undefined" ? performance.now() : Date.now();
}

function probeTokens(n: number, vocab: number): number[] {
  let x = 12345;
  return Array.from({ length: n }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x % vocab;
  });
}

/** auto, and every pair of the loaded engines. */
export function schedulePaths(kinds: EngineKind[]): SchedulePath[] {
  const paths: SchedulePath[] = [{ name: "auto", prefill: "auto", decode: "auto" }];
  for (const p of kinds) for (const d of kinds) paths.push({ name: p === d ? p : `${p}->${d}`, prefill: p, decode: d });
  return paths;
}

export async function benchSchedule(source: WeightSource, engines: Engine[], o: ScheduleBenchOptions): Promise<{ costs: CostTable | null; rows: ScheduleRow[] }> {
  const fingerprint = await modelFingerprint(source);
  // Measured fresh (no cache): the benchmark is also a check of the calibration.
  const costs = engines.length > 1 ? await calibratedCosts(engines, fingerprint, o.dtype, null) : null;
  const rows: ScheduleRow[] = [];
  const overBudget = new Set<string>();
  // The engines are shared by every path's Model: only the sessions differ.
  const paths = schedulePaths(engines.map((e) => e.kind)).map((path) => ({
    path,
    model: new Model({ config: source.config, engines, tokenizer: null, fingerprint, policy: path, costs }),
  }));
  // Paths take turns at each length and each run is repeated: a process gets
  // slower or faster over time (JIT warm-up, heap growth), and running one
  // path after another measured that drift instead of the paths (20-40%).
  for (const T of o.lengths) {
    const prompt = probeTokens(T, source.config.vocabSize);
    const best = new Map<string, { ms: number; run: Awaited<ReturnType<Model["generateText"]>> }>();
    for (let i = 0; i < (o.repeats ?? 3); i++)
      for (const { path, model } of paths) {
        if (overBudget.has(path.name)) continue;
        // One warm-up at the shortest length pays one-off compilation outside the timings.
        if (T === o.lengths[0] && i === 0) await model.generateText(prompt, { maxNewTokens: 2, ignoreEos: true });
        const t0 = now();
        const run = await model.generateText(prompt, { maxNewTokens: o.decodeTokens, ignoreEos: true });
        const ms = now() - t0;
        if (ms < (best.get(path.name)?.ms ?? Infinity)) best.set(path.name, { ms, run });
      }
    for (const { path } of paths) {
      const b = best.get(path.name);
      if (!b) continue;
      const s = b.run.stats;
      const row: ScheduleRow = {
        path: path.name,
        promptTokens: T,
        prefillEngine: s.prefillEngine,
        decodeEngine: s.decodeEngines.join("+"),
        timeToFirstTokenMs: s.timeToFirstTokenMs,
        decodeTokensPerS: s.decodeMs > 0 ? ((s.generatedTokens - 1) * 1000) / s.decodeMs : 0,
        totalMs: b.ms,
      };
      rows.push(row);
      o.onRow?.(row);
      if (path.name !== "auto" && b.ms > o.budgetMs) overBudget.add(path.name);
    }
  }
  return { costs, rows };
}

/** Per length: auto's total time against the best forced path's (lengths where every path ran). */
export function autoVersusBest(rows: ScheduleRow[]): { promptTokens: number; autoMs: number; bestPath: string; bestMs: number; ratio: number }[] {
  const out = [];
  for (const T of [...new Set(rows.map((r) => r.promptTokens))]) {
    const at = rows.filter((r) => r.promptTokens === T);
    const auto = at.find((r) => r.path === "auto");
    const forced = at.filter((r) => r.path !== "auto");
    if (!auto || forced.length === 0) continue;
    const best = forced.reduce((a, b) => (b.totalMs < a.totalMs ? b : a));
    out.push({ promptTokens: T, autoMs: auto.totalMs, bestPath: best.path, bestMs: best.totalMs, ratio: auto.totalMs / best.totalMs });
  }
  return out;
}
