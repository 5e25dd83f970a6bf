/**
 * The model in a worker, seen from the calling thread: the same small API as
 * an in-process Model (generate as an async iterator, whole-text generation,
 * sessions, snapshots), with every computation in a Web Worker (browsers) or
 * a worker thread (Node), so that a page stays responsive while the engines
 * run.
 */
import { MetalaError, type ErrorKind } from "../errors.js";
import { StreamedGeneration, type GenerationPiece, type GenerationResult } from "../generate/generate.js";
import type { Prompt, SessionGenerateOptions } from "../runtime/model.js";
import { spawnWorker, type Endpoint } from "./endpoint.js";
import type { LoadProgressEvent, ModelCacheChoice, Outgoing, Reply, WireError, WorkerLoadOptions, WorkerModelInfo, WorkerModelSource } from "./protocol.js";

export type { LoadProgressEvent, ModelCacheChoice, WorkerModelInfo } from "./protocol.js";

export interface WorkerModelOptions extends WorkerLoadOptions {
  /** Browsers, URL sources: where the downloaded files are kept (default "auto": OPFS, else the Cache API). */
  cache?: ModelCacheChoice;
  onProgress?: (p: LoadProgressEvent) => void;
  /** Non-fatal events from the worker (engine fallbacks, single-thread CPU engine). Default: console.warn. */
  onWarning?: (message: string) => void;
  /** The worker entry module, when a bundler put it elsewhere (default: beside this module). */
  workerUrl?: string | URL;
}

/** A model location: a folder URL (browsers, Node), a folder path (Node), or the model's files (browsers: picked files, a FileList, Blobs by name). */
export type WorkerModelLocation = string | URL | readonly File[] | ArrayLike<File> | ReadonlyMap<string, Blob>;

function fromWire(e: WireError): Error {
  if (e.kind === "internal") return new Error(`metala model worker: ${e.message}`);
  return new MetalaError(e.kind as ErrorKind, e.message);
}

function isNode(): boolean {
  return !!(globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;
}

function toSource(where: WorkerModelLocation, cache: ModelCacheChoice): WorkerModelSource {
  if (where instanceof URL || typeof where === "string") {
    const text = String(where);
    if (/^https?:\/\//i.test(text)) return { kind: "url", url: text.replace(/\/+$/, ""), cache };
    const page = (globalThis as { location?: { href: string } }).location?.href;
    if (page && !isNode()) return { kind: "url", url: new URL(text, page).href.replace(/\/+$/, ""), cache };
    if (where instanceof URL && where.protocol === "file:") return { kind: "path", path: decodeURIComponent(where.pathname) };
    return { kind: "path", path: text };
  }
  if (where instanceof Map) return { kind: "files", files: [...where], label: "selected files" };
  const files = Array.from(where as ArrayLike<File>);
  // A picked folder's files carry "folder/name" in webkitRelativePath; the folder names the model in messages.
  const folder = (files[0] as { webkitRelativePath?: string } | undefined)?.webkitRelativePath?.split("/")[0];
  return { kind: "files", files: files.map((f) => [f.name, f]), label: folder || "selected files" };
}

/** The channel to one worker: requests by id, replies routed back to them. */
class Connection {
  private nextId = 1;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private failure: Error | null = null;

  constructor(
    private readonly endpoint: Endpoint,
    onWarning: (message: string) => void,
  ) {
    endpoint.onMessage((m) => {
      const r = m as Reply;
      if (r.type === "warning") onWarning(r.message);
      else this.waiting.get(r.id)?.(r);
    });
    endpoint.onFailure((message) => {
      this.failure ??= new MetalaError("device", `the model worker stopped: ${message}`);
      const error: Reply = { id: 0, type: "error", error: { kind: "device", message: this.failure.message } };
      for (const handler of [...this.waiting.values()]) handler(error);
    });
  }

  /** Sends a request; `listen` sees every reply to it (progress, pieces) until done or error, then it is forgotten. */
  send(request: Outgoing, listen: (r: Reply) => void, transfer?: Transferable[]): number {
    if (this.failure) throw this.failure;
    const id = this.nextId++;
    this.waiting.set(id, (r) => {
      if (r.type === "done" || r.type === "error") {
        this.waiting.delete(id);
        if (this.waiting.size === 0) this.endpoint.hold(false);
      }
      listen(r);
    });
    this.endpoint.hold(true);
    try {
      this.endpoint.post({ ...request, id }, transfer);
    } catch (e) {
      // Options that cannot cross to the worker (a function, say) are the caller's to fix.
      this.waiting.delete(id);
      if (this.waiting.size === 0) this.endpoint.hold(false);
      throw new MetalaError("usage", `cannot send this request to the model worker: ${e instanceof Error ? e.message : String(e)}`);
    }
    return id;
  }

  /** A request answered once: resolves with its value, rejects with its error. */
  call<T>(request: Outgoing, onProgress?: (r: Reply) => void, transfer?: Transferable[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      try {
        this.send(
          request,
          (r) => {
            if (r.type === "done") resolve(r.value as T);
            else if (r.type === "error") reject(fromWire(r.error));
            else onProgress?.(r);
          },
          transfer,
        );
      } catch (e) {
        reject(e);
      }
    });
  }

  post(request: Outgoing): void {
    if (!this.failure) this.endpoint.post({ ...request, id: this.nextId++ });
  }

  terminate(): void {
    this.failure ??= new MetalaError("usage", "this model was disposed");
    this.endpoint.terminate();
  }
}

/**
 * One streamed generation in the worker. Iterate it for pieces (once), or
 * call complete() for the whole result. Leaving the loop early, or the
 * options' AbortSignal, stops the worker's generation.
 */
export class WorkerGeneration extends StreamedGeneration {
  constructor(
    private readonly conn: Connection,
    private readonly session: number | null,
    private readonly prompt: Prompt,
    private readonly options: SessionGenerateOptions,
  ) {
    super();
  }

  protected async *stream(): AsyncGenerator<GenerationPiece> {
    const { signal, ...wire } = this.options;
    if (signal?.aborted) throw new MetalaError("aborted", "generation aborted");
    const queue: Reply[] = [];
    let wake: (() => void) | null = null;
    const id = this.conn.send({ op: "generate", session: this.session, prompt: typeof this.prompt === "string" ? this.prompt : [...this.prompt], options: wire }, (r) => {
      queue.push(r);
      wake?.();
    });
    const abort = () => this.conn.post({ op: "abort", target: id });
    signal?.addEventListener("abort", abort);
    let ended = false;
    try {
      for (;;) {
        if (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
        const r = queue.shift()!;
        if (r.type === "piece") yield { token: r.token, text: r.text };
        else if (r.type === "done") {
          ended = true;
          this.finished = r.value as GenerationResult;
          return;
        } else if (r.type === "error") {
          ended = true;
          throw fromWire(r.error);
        }
      }
    } finally {
      signal?.removeEventListener("abort", abort);
      // The caller left the loop early: the worker stops too.
      if (!ended) abort();
    }
  }
}

/** One sequence in the worker's model; its state persists between generate calls. */
export class WorkerSession {
  constructor(
    private readonly conn: Connection,
    readonly id: number,
  ) {}

  generate(prompt: Prompt, options: SessionGenerateOptions = {}): WorkerGeneration {
    return new WorkerGeneration(this.conn, this.id, prompt, options);
  }

  /** Consumes `prompt` into the state without generating (a system prompt to snapshot, say). */
  feed(prompt: Prompt, options: { addSpecialTokens?: boolean } = {}): Promise<void> {
    return this.conn.call({ op: "session-feed", session: this.id, prompt: typeof prompt === "string" ? prompt : [...prompt], addSpecialTokens: options.addSpecialTokens });
  }

  /** The state as compact versioned bytes (see Session.snapshot). */
  snapshot(): Promise<Uint8Array> {
    return this.conn.call({ op: "session-snapshot", session: this.id });
  }

  restore(snapshot: Uint8Array): Promise<void> {
    return this.conn.call({ op: "session-restore", session: this.id, snapshot });
  }

  reset(): Promise<void> {
    return this.conn.call({ op: "session-reset", session: this.id });
  }

  async fork(): Promise<WorkerSession> {
    const id = await this.conn.call<number>({ op: "session-create", snapshot: await this.snapshot() });
    return new WorkerSession(this.conn, id);
  }

  dispose(): Promise<void> {
    return this.conn.call({ op: "session-dispose", session: this.id });
  }
}

export class WorkerModel {
  constructor(
    private readonly conn: Connection,
    /** The model, the engines it runs on, the devices found, and whether CPU threads are on. */
    readonly info: WorkerModelInfo,
    /** Warnings the worker sent while loading. */
    readonly warnings: readonly string[],
  ) {}

  /** Generates on a fresh session. */
  generate(prompt: Prompt, options: SessionGenerateOptions = {}): WorkerGeneration {
    return new WorkerGeneration(this.conn, null, prompt, options);
  }

  generateText(prompt: Prompt, options: SessionGenerateOptions = {}): Promise<GenerationResult> {
    return this.generate(prompt, options).complete();
  }

  async createSession(): Promise<WorkerSession> {
    return new WorkerSession(this.conn, await this.conn.call<number>({ op: "session-create" }));
  }

  async restoreSession(snapshot: Uint8Array): Promise<WorkerSession> {
    return new WorkerSession(this.conn, await this.conn.call<number>({ op: "session-create", snapshot }));
  }

  /** Frees the engines and ends the worker. */
  async dispose(): Promise<void> {
    try {
      await this.conn.call({ op: "dispose" });
    } catch {
      // A worker that already died has nothing left to free.
    }
    this.conn.terminate();
  }
}

/**
 * Starts a worker and loads a model in it. In browsers a URL's files go
 * through the model cache (a second visit downloads nothing); in Node a
 * string is a folder path unless it is an http(s) URL.
 */
export async function loadModelInWorker(where: WorkerModelLocation, options: WorkerModelOptions = {}): Promise<WorkerModel> {
  const { cache = "auto", onProgress, onWarning, workerUrl, ...load } = options;
  const source = toSource(where, cache);
  const url = workerUrl ? new URL(String(workerUrl), (globalThis as { location?: { href: string } }).location?.href) : new URL("./entry.js", import.meta.url);
  const warnings: string[] = [];
  const warn = onWarning ?? ((m: string) => console.warn(`metala: ${m}`));
  const conn = new Connection(await spawnWorker(url), (m) => {
    warnings.push(m);
    warn(m);
  });
  try {
    const info = await conn.call<WorkerModelInfo>({ op: "load", source, options: load }, (r) => {
      if (r.type === "progress") onProgress?.(r.progress);
    });
    return new WorkerModel(conn, info, warnings);
  } catch (e) {
    conn.terminate();
    throw e;
  }
}
