import type { Engine, EngineKind } from "../engine.js";
import { MetalaError, isMetalaError } from "../errors.js";
import { prefillMs, type CostTable } from "./costs.js";

export type DeviceChoice = "auto" | EngineKind;

/** How far one observed time moves a cost estimate (see Scheduler.observe). */
const ADAPT = 0.3;

export interface SchedulerPolicy {
  prefill: DeviceChoice;
  decode: DeviceChoice;
}

/**
 * An engine failed in a way that another engine would not (a lost GPU
 * device, a GPU validation or out-of-memory error): the request can go on
 * elsewhere. Errors the input causes (a bad token id) are not failures of
 * the engine and are never wrapped.
 */
export class EngineFailure extends Error {
  constructor(
    readonly kind: EngineKind,
    readonly original: unknown,
  ) {
    super(`${kind} engine failed: ${original instanceof Error ? original.message : String(original)}`);
    this.name = "EngineFailure";
  }
}

/** Only a GPU can disappear under a running request; the CPU engines are the floor everything falls back to. */
export function canBeLost(kind: EngineKind): boolean {
  return kind === "webgpu";
}

export function isEngineFault(e: unknown): boolean {
  return !(isMetalaError(e) && (e.kind === "input" || e.kind === "usage" || e.kind === "aborted"));
}

/**
 * Picks the engine for each piece of work on one model and keeps track of
 * engines that have failed. Shared by all sessions of the model.
 */
export class Scheduler {
  private readonly lost = new Set<EngineKind>();
  private readonly queues = new Map<EngineKind, Promise<unknown>>();
  private cpuLoading: Promise<Engine> | null = null;

  /** The model's own copy of the costs (observe() refines it; the cached table stays as measured). */
  readonly costs: CostTable | null;

  constructor(
    private readonly engines: Map<EngineKind, Engine>,
    readonly policy: SchedulerPolicy,
    costs: CostTable | null,
    /** Makes a CPU engine when a GPU fails and none is loaded. */
    private readonly makeCpuEngine: () => Promise<Engine>,
    private readonly warn: (message: string) => void,
  ) {
    this.costs = costs ? structuredClone(costs) : null;
  }

  engine(kind: EngineKind): Engine {
    const e = this.engines.get(kind);
    if (!e || this.lost.has(kind)) throw new MetalaError("device", `the ${kind} engine is not available`);
    return e;
  }

  isLost(kind: EngineKind): boolean {
    return this.lost.has(kind);
  }

  /** Loaded engines that still work. */
  usable(): EngineKind[] {
    return [...this.engines.keys()].filter((k) => !this.lost.has(k));
  }

  /** The engine for one decode step. */
  decodeKind(): EngineKind {
    const usable = this.usable();
    const forced = this.policy.decode;
    if (forced !== "auto") return usable.includes(forced) ? forced : this.cpuKind();
    if (usable.length === 1) return usable[0];
    const costs = this.costs;
    if (costs) {
      const measured = usable.filter((k) => costs.engines[k]);
      if (measured.length > 0)
        return measured.reduce((a, b) => (costs.engines[b].stepMs < costs.engines[a].stepMs ? b : a));
    }
    return this.cpuKind();
  }

  /**
   * The engine to consume `tokens` tokens in one go, given which engine holds
   * the state now (null when the state is empty or on the host): its own
   * prefill time plus the hand-offs it implies, from the current holder and to
   * the decode engine afterwards.
   */
  prefillKind(tokens: number, holder: EngineKind | null): EngineKind {
    const usable = this.usable();
    const forced = this.policy.prefill;
    if (forced !== "auto") return usable.includes(forced) ? forced : this.cpuKind();
    const decode = this.decodeKind();
    const costs = this.costs;
    if (tokens === 1 || usable.length === 1 || !costs) return decode;
    let best = decode;
    let bestMs = Infinity;
    for (const k of usable) {
      const c = costs.engines[k];
      if (!c) continue;
      let ms = prefillMs(c, tokens);
      if (holder !== null && holder !== k) ms += costs.handoffMs;
      if (k !== decode) ms += costs.handoffMs;
      if (ms < bestMs) {
        best = k;
        bestMs = ms;
      }
    }
    return best;
  }

  /**
   * Folds a real call's time into the cost table, so that the choices follow
   * the machine as it is now (another process taking the cores, a GPU
   * clocking down) rather than as it was at calibration. A step updates the
   * step time; a prefill rescales that engine's prefill curve by how far the
   * curve was off. Each observation moves the estimate 30% of the way, so one
   * outlier shifts it only part of the way. Engines not in use keep their estimate
   * until they run again.
   */
  observe(kind: EngineKind, what: "step" | "prefill", tokens: number, ms: number): void {
    const c = this.costs?.engines[kind];
    if (!c || !(ms > 0)) return;
    if (what === "step") {
      c.stepMs = c.stepMs + ADAPT * (ms - c.stepMs);
      return;
    }
    const predicted = prefillMs(c, tokens);
    if (!(predicted > 0)) return;
    const scale = 1 + ADAPT * (ms / predicted - 1);
    c.prefill = c.prefill.map((p) => ({ tokens: p.tokens, ms: p.ms * scale }));
  }

  /** The CPU engine every failure falls back to: wasm when loaded, else the reference. */
  private cpuKind(): EngineKind {
    const usable = this.usable();
    const cpu = (["wasm", "reference"] as const).find((k) => usable.includes(k));
    if (!cpu) throw new MetalaError("device", "no working engine is left (the GPU failed and no CPU engine could be loaded)");
    return cpu;
  }

  /**
   * Marks a failed engine as lost for the rest of this model's life and makes
   * sure a CPU engine is there to take over.
   */
  async markLost(failure: EngineFailure): Promise<void> {
    if (!this.lost.has(failure.kind)) {
      this.lost.add(failure.kind);
      this.warn(`${failure.message}; continuing on the CPU`);
    }
    if (this.usable().some((k) => !canBeLost(k))) return;
    this.cpuLoading ??= this.makeCpuEngine();
    const cpu = await this.cpuLoading;
    this.engines.set(cpu.kind, cpu);
  }

  /**
   * Runs `f` on one engine after the work already queued on it: engines keep
   * their own scratch memory, so one engine runs one session's call at a time,
   * while different engines (the GPU prefilling one session, the CPU decoding
   * another) run side by side.
   */
  run<T>(kind: EngineKind, f: (e: Engine) => Promise<T>): Promise<T> {
    const prev = this.queues.get(kind) ?? Promise.resolve();
    const result = prev.then(async () => {
      const e = this.engine(kind);
      try {
        return await f(e);
      } catch (err) {
        if (canBeLost(kind) && isEngineFault(err)) throw new EngineFailure(kind, err);
        throw err;
      }
    });
    this.queues.set(
      kind,
      result.catch(() => undefined),
    );
    return result;
  }

  allEngines(): Engine[] {
    return [...this.engines.values()];
  }
}
