/**
 * Measured costs of one engine on one loaded model: prefill time at a few
 * prompt lengths and the time of one decode step. Prefill cost is close to
 * a + b·T at large T but not at small T (launch overheads, partly filled
 * chunks), so it is kept as measured points and interpolated linearly
 * between them rather than fitted by one line.
 */
export interface EngineCosts {
  /** Measured prefill times, by increasing token count. */
  prefill: { tokens: number; ms: number }[];
  /** One decode step. */
  stepMs: number;
}

/** Costs of every engine of a model, plus moving the state between two engines. */
export interface CostTable {
  engines: Record<string, EngineCosts>;
  /** Export from one engine and import into another. */
  handoffMs: number;
}

/** Estimated time to prefill T tokens: piecewise linear through the points, extended by the last slope. */
export function prefillMs(c: EngineCosts, tokens: number): number {
  const p = c.prefill;
  if (p.length === 0) return tokens * c.stepMs;
  if (p.length === 1 || tokens <= p[0].tokens) return (p[0].ms * tokens) / p[0].tokens;
  for (let i = 1; i < p.length; i++)
    if (tokens <= p[i].tokens) return lerp(p[i - 1], p[i], tokens);
  return Math.max(lerp(p[p.length - 2], p[p.length - 1], tokens), 0);
}

function lerp(a: { tokens: number; ms: number }, b: { tokens: number; ms: number }, t: number): number {
  return a.ms + ((b.ms - a.ms) * (t - a.tokens)) / (b.tokens - a.tokens);
}

/** Whether a parsed JSON value is a well-formed CostTable (the cache file may be stale or edited). */
export function isCostTable(v: unknown): v is CostTable {
  if (typeof v !== "object" || v === null) return false;
  const t = v as CostTable;
  if (typeof t.handoffMs !== "number" || typeof t.engines !== "object" || t.engines === null) return false;
  return Object.values(t.engines).every(
    (e) =>
      typeof e === "object" &&
      e !== null &&
      typeof e.stepMs === "number" &&
      Array.isArray(e.prefill) &&
      e.prefill.every((p) => typeof p?.tokens === "number" && p.tokens > 0 && typeof p.ms === "number"),
  );
}
