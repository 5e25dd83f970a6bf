import type { Engine, EngineKind } from "../engine.js";
import { MetalaError } from "../errors.js";
import type { WeightSource } from "../model/source.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { calibratedCosts } from "./calibrate.js";
import { defaultCostCache, type CostCache } from "./cost-cache.js";
import type { CostTable } from "./costs.js";
import { probeDevices } from "./devices.js";
import { createEngineOfKind, withReadProgress, type WeightDtype } from "./engines.js";
import { modelFingerprint } from "./fingerprint.js";
import { Model } from "./model.js";
import type { DeviceChoice, SchedulerPolicy } from "./scheduler.js";

export interface LoadProgress {
  /** "weights" while engines read the weights, "calibrating" while the scheduler measures them. */
  phase: "weights" | "calibrating";
  /** Stored weight bytes read so far (over all engines loading) and in all. */
  loadedBytes: number;
  totalBytes: number;
}

export interface LoadOptions {
  /** Engine for everything: "auto" (default) lets the scheduler pick per request and piece of work. */
  device?: DeviceChoice;
  /** Override the engine of prompt processing only. */
  prefillDevice?: DeviceChoice;
  /** Override the engine of token-by-token decoding only. */
  decodeDevice?: DeviceChoice;
  dtype?: WeightDtype;
  /** CPU engine threads (default: the CPU engine's choice). */
  threads?: number;
  /**
   * The tokenizer; by default read from the model folder (Node) or fetched
   * beside a URL. null: none (token-id prompts only).
   */
  tokenizer?: Tokenizer | null;
  onProgress?: (p: LoadProgress) => void;
  /** Non-fatal events: an engine that could not load, a GPU lost mid-request. Default: console.warn. */
  onWarning?: (message: string) => void;
  /** Where measured engine costs are kept between runs (default: the user's cache dir / localStorage; null: none). */
  costCache?: CostCache | null;
}

/** Where a model comes from: a folder path (Node), an http(s) URL, a set of files by name (browsers), or an open WeightSource. */
export type ModelLocation = string | URL | ReadonlyMap<string, Blob> | readonly File[] | WeightSource;

function isWeightSource(x: unknown): x is WeightSource {
  return typeof x === "object" && x !== null && "config" in x && typeof (x as WeightSource).read === "function";
}

async function openLocation(where: ModelLocation, wantTokenizer: boolean): Promise<{ source: WeightSource; tokenizer: Tokenizer | null }> {
  const ckpt = await import("../model/checkpoint.js");
  const tk = await import("../tokenizer/load.js");
  if (isWeightSource(where)) return { source: where, tokenizer: null };
  if (typeof where === "string" && !/^https?:\/\//i.test(where)) {
    const source = await ckpt.openCheckpoint(where);
    if (!wantTokenizer) return { source, tokenizer: null };
    const { loadTokenizerFromDir } = await import("../tokenizer/node.js");
    return { source, tokenizer: await optionalTokenizer(() => loadTokenizerFromDir(where), source) };
  }
  if (typeof where === "string" || where instanceof URL) {
    const base = String(where).replace(/\/+$/, "");
    const source = await ckpt.openCheckpointFromUrl(base);
    if (!wantTokenizer) return { source, tokenizer: null };
    const files: Record<string, string> = {};
    for (const name of tk.TOKENIZER_FILE_NAMES) {
      const r = await fetch(`${base}/${name}`).catch(() => null);
      if (r?.ok) files[name] = await r.text();
    }
    return { source, tokenizer: await optionalTokenizer(async () => tk.loadTokenizer(files, base), source) };
  }
  const blobs = new Map<string, Blob>(Array.isArray(where) ? where.map((f: File) => [f.name, f]) : [...(where as ReadonlyMap<string, Blob>)]);
  const source = await ckpt.openCheckpointFromBlobs(blobs);
  if (!wantTokenizer) return { source, tokenizer: null };
  const files: Record<string, string> = {};
  for (const [name, blob] of blobs) if (tk.isTokenizerFileName(name)) files[name] = await blob.text();
  return { source, tokenizer: await optionalTokenizer(async () => tk.loadTokenizer(files, "selected files"), source) };
}

/** A model folder without tokenizer files still runs on token ids; a broken tokenizer file is an error. */
async function optionalTokenizer(load: () => Promise<Tokenizer>, source: WeightSource): Promise<Tokenizer | null> {
  try {
    return await load();
  } catch (e) {
    if (e instanceof MetalaError && e.kind === "io" && /no tokenizer/.test(e.message)) return null;
    await source.close();
    throw e;
  }
}

/**
 * Loads a model with its tokenizer onto the engines the device choice asks
 * for. With "auto": the CPU engine, plus the GPU when it is a real one
 * (software adapters are never picked automatically); with both, the
 * scheduler's costs come from the cache or a short measurement.
 */
export async function loadModel(where: ModelLocation, options: LoadOptions = {}): Promise<Model> {
  const warn = options.onWarning ?? ((m: string) => console.warn(`metala: ${m}`));
  const dtype = options.dtype ?? "f32";
  const policy: SchedulerPolicy = {
    prefill: options.prefillDevice ?? options.device ?? "auto",
    decode: options.decodeDevice ?? options.device ?? "auto",
  };
  const ownsSource = !isWeightSource(where);
  const { source, tokenizer: found } = await openLocation(where, options.tokenizer === undefined);
  const tokenizer = options.tokenizer === undefined ? found : options.tokenizer;
  const engines: Engine[] = [];
  try {
    const fingerprint = await modelFingerprint(source);
    const kinds = await enginesToLoad(policy);
    let loaded = 0;
    const totalBytes = source.storedBytes * kinds.length;
    const progress = withReadProgress(source, (bytes) => {
      loaded += bytes;
      options.onProgress?.({ phase: "weights", loadedBytes: loaded, totalBytes });
    });
    const engineOptions = { dtype, threads: options.threads, warn };
    for (const kind of kinds) {
      try {
        engines.push(await createEngineOfKind(kind, progress, engineOptions));
      } catch (e) {
        // An explicit choice that cannot load is the user's error to see; auto carries on without it.
        if (policy.prefill === kind || policy.decode === kind) throw e;
        warn(`the ${kind} engine could not be loaded (${e instanceof Error ? e.message : String(e)}); not using it`);
      }
    }
    if (engines.length === 0) {
      warn("no fast engine could be loaded; running on the slow reference engine");
      engines.push(await createEngineOfKind("reference", progress, { dtype: "f32" }));
    }
    let costs: CostTable | null = null;
    if (engines.length > 1) {
      options.onProgress?.({ phase: "calibrating", loadedBytes: loaded, totalBytes });
      costs = await calibratedCosts(engines, fingerprint, dtype, options.costCache === undefined ? defaultCostCache() : options.costCache);
    }
    const makeCpuEngine = async (): Promise<Engine> => {
      try {
        return await createEngineOfKind("wasm", source, engineOptions);
      } catch {
        return createEngineOfKind("reference", source, { dtype: "f32" });
      }
    };
    // A WeightSource the caller passed stays the caller's to close.
    const close = ownsSource ? () => source.close() : undefined;
    return new Model({ config: source.config, engines, tokenizer, fingerprint, policy, costs, makeCpuEngine, onWarning: warn, close });
  } catch (e) {
    for (const en of engines) await en.dispose().catch(() => undefined);
    if (ownsSource) await source.close();
    throw e;
  }
}

/** The engines a policy needs: the named ones, or for "auto" the CPU engine and a hardware GPU. */
async function enginesToLoad(policy: SchedulerPolicy): Promise<EngineKind[]> {
  const kinds = new Set<EngineKind>();
  for (const choice of [policy.prefill, policy.decode]) if (choice !== "auto") kinds.add(choice);
  if (policy.prefill === "auto" || policy.decode === "auto") {
    const dev = await probeDevices();
    if (dev.wasm !== null) kinds.add("wasm");
    // A software adapter (SwiftShader) is correct but slower than the CPU engine it would run beside.
    if (dev.webgpu.available && !dev.webgpuIsSoftware) kinds.add("webgpu");
  }
  return [...kinds];
}
