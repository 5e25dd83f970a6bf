/**
 * The model worker's side: loads one model and serves generation, sessions
 * and snapshots to the calling thread over an Endpoint (protocol.ts).
 */
import { isMetalaError, MetalaError } from "../errors.js";
import { openCheckpointFromBlobs } from "../model/checkpoint.js";
import { parameterCount } from "../model/config.js";
import type { WeightSource } from "../model/source.js";
import { probeDevices } from "../runtime/devices.js";
import { loadModel, type LoadOptions, type ModelLocation } from "../runtime/load.js";
import type { Model, Session } from "../runtime/model.js";
import { isTokenizerFileName, loadTokenizer } from "../tokenizer/load.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { yieldToEvents, type Endpoint } from "./endpoint.js";
import type { LoadProgressEvent, Reply, Request, WireError, WorkerModelInfo, WorkerModelSource } from "./protocol.js";

function now(): number {
  return typeof performance !== "undefined" ? performance.now() : Date.now();
}

export function toWireError(e: unknown): WireError {
  if (isMetalaError(e)) return { kind: e.kind, message: e.message };
  return { kind: "internal", message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
}

/** Why the CPU engine runs on one thread here, if it does. */
function threadsReason(wasm: Record<string, unknown> | null): WorkerModelInfo["threads"] {
  if (wasm?.threads) return { usable: true };
  const g = globalThis as { crossOriginIsolated?: boolean };
  if (g.crossOriginIsolated === false)
    return {
      usable: false,
      reason:
        "the page is not cross-origin isolated, so SharedArrayBuffer is off and the CPU engine runs on one thread; serve the page with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp",
    };
  return { usable: false, reason: "this host has no shared WebAssembly memory; the CPU engine runs on one thread" };
}

/**
 * Opens a model given as files by name (picked by the user, or read back from
 * the model cache) with its tokenizer, labelled by where the files came from
 * so that errors name the folder or URL rather than "selected files".
 */
async function openFiles(files: Map<string, Blob>, label: string): Promise<{ source: WeightSource; tokenizer: Tokenizer | null }> {
  const source = await openCheckpointFromBlobs(files, label);
  try {
    const texts: Record<string, string> = {};
    for (const [name, blob] of files) if (isTokenizerFileName(name)) texts[name] = await blob.text();
    return { source, tokenizer: Object.keys(texts).length > 0 ? loadTokenizer(texts, label) : null };
  } catch (e) {
    await source.close();
    throw e;
  }
}

/** Opens the source: a URL through the browser's model cache (or read in place), files, or a path. */
async function locate(
  source: WorkerModelSource,
  progress: (p: LoadProgressEvent) => void,
): Promise<{ where: ModelLocation; tokenizer?: Tokenizer | null; cache: WorkerModelInfo["cache"]; label: string }> {
  if (source.kind === "path") return { where: source.path, cache: "path", label: source.path };
  if (source.kind === "files") {
    const opened = await openFiles(new Map(source.files), source.label);
    return { where: opened.source, tokenizer: opened.tokenizer, cache: "files", label: source.label };
  }
  const inBrowser = typeof (globalThis as { caches?: unknown }).caches !== "undefined" || !!(globalThis as { navigator?: { storage?: unknown } }).navigator?.storage;
  const cache = source.cache === "auto" && !inBrowser ? "none" : source.cache;
  if (cache === "none") return { where: source.url, cache, label: source.url };
  const { openModelStore } = await import("../browser/model-cache.js");
  const { fetchModelFiles } = await import("../browser/download.js");
  const store = await openModelStore(cache);
  const files = await fetchModelFiles(source.url, store, {
    onProgress: (p) => progress({ phase: "download", loadedBytes: p.loadedBytes, totalBytes: p.totalBytes, cachedBytes: p.cachedBytes, file: p.file }),
  });
  const opened = await openFiles(files, source.url);
  return { where: opened.source, tokenizer: opened.tokenizer, cache: store.kind, label: source.url };
}

export function serveModel(endpoint: Endpoint): void {
  let model: Model | null = null;
  let nextSession = 1;
  const sessions = new Map<number, Session>();
  const running = new Map<number, AbortController>();
  const reply = (r: Reply, transfer?: Transferable[]) => endpoint.post(r, transfer);

  const session = (id: number): Session => {
    const s = sessions.get(id);
    if (!s) throw new MetalaError("usage", `session ${id} does not exist (disposed?)`);
    return s;
  };
  const loaded = (): Model => {
    if (!model) throw new MetalaError("usage", "no model is loaded in this worker");
    return model;
  };

  async function load(req: Extract<Request, { op: "load" }>): Promise<WorkerModelInfo> {
    if (model) throw new MetalaError("usage", "this worker already holds a model; start another worker for another model");
    const t0 = now();
    const progress = (p: LoadProgressEvent) => reply({ id: req.id, type: "progress", progress: p });
    const { where, tokenizer, cache, label } = await locate(req.source, progress);
    const options: LoadOptions = {
      ...req.options,
      ...(tokenizer !== undefined ? { tokenizer } : {}),
      onProgress: (p) => progress({ phase: p.phase, loadedBytes: p.loadedBytes, totalBytes: p.totalBytes }),
      onWarning: (message) => reply({ id: -1, type: "warning", message }),
    };
    const m = await loadModel(where, options);
    model = m;
    const dev = await probeDevices();
    const threads = threadsReason(dev.wasm);
    if (!threads.usable && m.engines.some((e) => e.kind === "wasm")) reply({ id: -1, type: "warning", message: threads.reason! });
    const c = m.config;
    return {
      label,
      config: { hiddenSize: c.hiddenSize, numLayers: c.numLayers, numHeads: c.numHeads, vocabSize: c.vocabSize, parameters: parameterCount(c, c.tieWordEmbeddings === true) },
      fingerprint: m.fingerprint,
      hasTokenizer: m.tokenizer !== null,
      engines: m.engines,
      devices: { cores: dev.cores, webgpu: { ...dev.webgpu }, webgpuIsSoftware: dev.webgpuIsSoftware, wasm: dev.wasm },
      threads,
      cache,
      loadMs: now() - t0,
    };
  }

  async function generate(req: Extract<Request, { op: "generate" }>): Promise<unknown> {
    const abort = new AbortController();
    running.set(req.id, abort);
    try {
      const options = { ...req.options, signal: abort.signal };
      if (req.session === null) {
        const it = loaded().generate(req.prompt, options);
        for (;;) {
          const step = await it.next();
          if (step.done) return step.value;
          reply({ id: req.id, type: "piece", token: step.value.token, text: step.value.text });
          await yieldToEvents();
        }
      }
      const g = session(req.session).generate(req.prompt, options);
      for await (const piece of g) {
        reply({ id: req.id, type: "piece", token: piece.token, text: piece.text });
        await yieldToEvents();
      }
      return g.result;
    } finally {
      running.delete(req.id);
    }
  }

  async function handle(req: Request): Promise<{ value?: unknown; transfer?: Transferable[] }> {
    switch (req.op) {
      case "load":
        return { value: await load(req) };
      case "generate":
        return { value: await generate(req) };
      case "abort":
        running.get(req.target)?.abort();
        return {};
      case "session-create": {
        const s = req.snapshot ? loaded().restoreSession(req.snapshot) : loaded().createSession();
        const sid = nextSession++;
        sessions.set(sid, s);
        return { value: sid };
      }
      case "session-feed":
        await session(req.session).feed(req.prompt, { addSpecialTokens: req.addSpecialTokens });
        return {};
      case "session-snapshot": {
        // A copy, so that transferring it cannot detach memory the session still uses.
        const bytes = (await session(req.session).snapshot()).slice();
        return { value: bytes, transfer: [bytes.buffer as ArrayBuffer] };
      }
      case "session-restore":
        session(req.session).restore(req.snapshot);
        return {};
      case "session-reset":
        session(req.session).reset();
        return {};
      case "session-dispose":
        sessions.get(req.session)?.dispose();
        sessions.delete(req.session);
        return {};
      case "dispose":
        for (const a of running.values()) a.abort();
        await model?.dispose();
        model = null;
        sessions.clear();
        return {};
    }
  }

  endpoint.onMessage((message) => {
    const req = message as Request;
    handle(req).then(
      ({ value, transfer }) => reply({ id: req.id, type: "done", value }, transfer),
      (e) => reply({ id: req.id, type: "error", error: toWireError(e) }),
    );
  });
}
