/**
 * The messages between a WorkerModel (the calling thread) and the model
 * worker. Requests carry an id; every reply names the id it answers. Only
 * structured-clonable values cross: prompts, options without the signal,
 * Files, snapshot bytes.
 */
import type { ErrorKind } from "../errors.js";
import type { GenerationResult } from "../generate/generate.js";
import type { Prompt, SessionGenerateOptions } from "../runtime/model.js";
import type { DeviceChoice } from "../runtime/scheduler.js";
import type { WeightDtype } from "../runtime/engines.js";

/** Where the worker loads the model from. */
export type WorkerModelSource =
  /** An http(s) URL of a model folder, fetched through the model cache ("none": read with Range requests, nothing kept). */
  | { kind: "url"; url: string; cache: ModelCacheChoice }
  /** Files picked by the user (or any Blobs), by file name. */
  | { kind: "files"; files: [string, Blob][]; label: string }
  /** A folder path (Node only). */
  | { kind: "path"; path: string };

/** Where a downloaded model is kept: the origin private file system, the Cache API, the best available ("auto"), or nowhere. */
export type ModelCacheChoice = "auto" | "opfs" | "cache-api" | "none";

export interface WorkerLoadOptions {
  device?: DeviceChoice;
  prefillDevice?: DeviceChoice;
  decodeDevice?: DeviceChoice;
  dtype?: WeightDtype;
  threads?: number;
}

/** Options of a generation as they cross to the worker (the AbortSignal stays behind; abort is a message). */
export type WireGenerateOptions = Omit<SessionGenerateOptions, "signal">;

export type Request =
  | { op: "load"; id: number; source: WorkerModelSource; options: WorkerLoadOptions }
  | { op: "generate"; id: number; session: number | null; prompt: Prompt; options: WireGenerateOptions }
  | { op: "abort"; id: number; target: number }
  | { op: "session-create"; id: number; snapshot?: Uint8Array }
  | { op: "session-feed"; id: number; session: number; prompt: Prompt; addSpecialTokens?: boolean }
  | { op: "session-snapshot"; id: number; session: number }
  | { op: "session-restore"; id: number; session: number; snapshot: Uint8Array }
  | { op: "session-reset"; id: number; session: number }
  | { op: "session-dispose"; id: number; session: number }
  | { op: "dispose"; id: number };

/** What load reports while it runs: downloading into the cache, reading weights into engines, measuring engines. */
export interface LoadProgressEvent {
  phase: "download" | "weights" | "calibrating";
  loadedBytes: number;
  totalBytes: number;
  /** The file being downloaded (phase "download"). */
  file?: string;
  /** Download phase: bytes taken from the cache instead of the network. */
  cachedBytes?: number;
}

/** What the worker tells about the loaded model and the machine under it. */
export interface WorkerModelInfo {
  label: string;
  config: { hiddenSize: number; numLayers: number; numHeads: number; vocabSize: number; parameters: number };
  fingerprint: string;
  hasTokenizer: boolean;
  engines: { kind: string; description: string }[];
  devices: {
    cores: number;
    webgpu: Record<string, unknown>;
    webgpuIsSoftware: boolean;
    wasm: Record<string, unknown> | null;
  };
  /** Whether the CPU engine can use threads here, and if not, why. */
  threads: { usable: boolean; reason?: string };
  /** The cache the files came from or went to ("none" when read directly). */
  cache: ModelCacheChoice | "files" | "path";
  loadMs: number;
}

export interface WireError {
  kind: ErrorKind | "internal";
  message: string;
}

export type Reply =
  | { id: number; type: "progress"; progress: LoadProgressEvent }
  | { id: number; type: "piece"; token: number | null; text: string }
  | { id: number; type: "done"; value?: unknown }
  | { id: number; type: "error"; error: WireError }
  | { id: -1; type: "warning"; message: string };

export type { GenerationResult };

/** A request before the connection numbers it. */
export type Outgoing = Request extends infer R ? (R extends { id: number } ? Omit<R, "id"> : never) : never;
