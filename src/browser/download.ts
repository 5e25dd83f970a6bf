/**
 * Fetches a model folder into a ModelStore and returns its files as Blobs
 * (disk-backed where the store is OPFS). A model stored completely loads
 * with no request at all; a download interrupted midway resumes with a
 * Range request guarded by If-Range, so a file changed on the server is
 * fetched again whole instead of being spliced.
 */
import { MetalaError } from "../errors.js";
import { httpStatusError, okOrMissing } from "../io/http.js";
import { INDEX_FILE, parseWeightMap } from "../io/safetensors-index.js";
import { parseJsonText } from "../io/json-file.js";
import { TOKENIZER_FILE_NAMES } from "../tokenizer/load.js";
import { MANIFEST_VERSION, type ModelManifest, type ModelStore } from "./model-store.js";

export interface DownloadProgress {
  loadedBytes: number;
  totalBytes: number;
  /** Of loadedBytes, those already in the store. */
  cachedBytes: number;
  file: string;
}

export interface DownloadOptions {
  onProgress?: (p: DownloadProgress) => void;
  fetch?: typeof fetch;
}

type Remote = { size: number; etag?: string; lastModified?: string };

function ioError(url: string, e: unknown): MetalaError {
  if (e instanceof MetalaError) return e;
  const name = (e as { name?: string }).name;
  if (name === "QuotaExceededError")
    return new MetalaError("io", `${url}: the browser's storage quota is full; evict cached models (evictCachedModel) or load with cache "none"`, { cause: e });
  return new MetalaError("io", `${url}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

async function get(doFetch: typeof fetch, url: string, init: RequestInit = {}): Promise<Response> {
  try {
    return await doFetch(url, { cache: "no-store", ...init });
  } catch (e) {
    throw ioError(url, e);
  }
}

/** A small file's bytes; undefined when `optional` and the server says 404. */
async function smallFile(doFetch: typeof fetch, url: string, optional: boolean): Promise<Uint8Array | undefined> {
  const res = await okOrMissing(url, await get(doFetch, url), optional);
  if (!res) return undefined;
  try {
    return new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw ioError(url, e);
  }
}

/** Size and validators of a large file, without its body. */
async function probe(doFetch: typeof fetch, url: string): Promise<Remote> {
  const res = await get(doFetch, url, { method: "HEAD" });
  if (!res.ok) throw httpStatusError(url, res);
  const size = Number(res.headers.get("content-length") ?? NaN);
  if (!Number.isSafeInteger(size) || size < 0) throw new MetalaError("io", `${url}: the server tells no Content-Length for HEAD, so the download cannot be checked`);
  return { size, etag: res.headers.get("etag") ?? undefined, lastModified: res.headers.get("last-modified") ?? undefined };
}

function sameRemote(a: Remote | undefined, b: Remote): boolean {
  return !!a && a.size === b.size && a.etag === b.etag && a.lastModified === b.lastModified;
}

/** The model's files from the store, if it holds all of them at their recorded sizes. */
async function storedFiles(store: ModelStore, m: ModelManifest): Promise<Map<string, Blob> | null> {
  const out = new Map<string, Blob>();
  for (const [name, f] of Object.entries(m.files)) {
    const blob = await store.readFile(m.url, name);
    if (!blob || blob.size !== f.size) return null;
    out.set(name, blob);
  }
  return out;
}

export async function fetchModelFiles(base: string, store: ModelStore, options: DownloadOptions = {}): Promise<Map<string, Blob>> {
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const report = options.onProgress ?? (() => {});
  const previous = await store.readManifest(base);
  if (previous?.complete) {
    const files = await storedFiles(store, previous);
    if (files) {
      const total = [...files.values()].reduce((a, b) => a + b.size, 0);
      report({ loadedBytes: total, totalBytes: total, cachedBytes: total, file: "" });
      return files;
    }
  }

  // The small files: fetched whole each time a download (re)starts.
  const small = new Map<string, Uint8Array>();
  small.set("config.json", (await smallFile(doFetch, `${base}/config.json`, false))!);
  const index = await smallFile(doFetch, `${base}/${INDEX_FILE}`, true);
  if (index) small.set(INDEX_FILE, index);
  for (const name of TOKENIZER_FILE_NAMES) {
    const bytes = await smallFile(doFetch, `${base}/${name}`, true);
    if (bytes) small.set(name, bytes);
  }
  const shards = index
    ? [...new Set(parseWeightMap(parseJsonText(new TextDecoder().decode(index), `${base}/${INDEX_FILE}`), `${base}/${INDEX_FILE}`).values())]
    : ["model.safetensors"];
  const remote = new Map<string, Remote>();
  for (const name of shards) remote.set(name, await probe(doFetch, `${base}/${name}`));

  const manifest: ModelManifest = { version: MANIFEST_VERSION, url: base, files: {}, complete: false, storedAt: new Date().toISOString() };
  for (const [name, bytes] of small) manifest.files[name] = { size: bytes.length, done: false };
  for (const [name, r] of remote) manifest.files[name] = { ...r, done: sameRemote(previous?.files[name], r) && !!previous?.files[name].done };
  const totalBytes = Object.values(manifest.files).reduce((a, f) => a + f.size, 0);
  let loadedBytes = 0;
  let cachedBytes = 0;
  const write = async (name: string, body: ReadableStream<Uint8Array>, offset: number) => {
    try {
      await store.writeFile(base, name, body, offset, (n) => {
        loadedBytes += n;
        report({ loadedBytes, totalBytes, cachedBytes, file: name });
      });
    } catch (e) {
      throw ioError(`${base}/${name}`, e);
    }
  };
  try {
    await store.writeManifest(manifest);
    for (const [name, bytes] of small) {
      await write(name, new Blob([bytes as BlobPart]).stream(), 0);
      manifest.files[name].done = true;
    }
    for (const [name, r] of remote) {
      const url = `${base}/${name}`;
      let have = sameRemote(previous?.files[name], r) ? await store.storedBytes(base, name) : 0;
      if (have > r.size) have = 0;
      loadedBytes += have;
      cachedBytes += have;
      report({ loadedBytes, totalBytes, cachedBytes, file: name });
      if (have < r.size) {
        const validator = r.etag ?? r.lastModified;
        const resume = have > 0 && validator !== undefined;
        const res = await get(doFetch, url, resume ? { headers: { Range: `bytes=${have}-`, "If-Range": validator } } : {});
        let offset = 0;
        if (resume && res.status === 206) {
          const start = /^\s*bytes\s+(\d+)-/i.exec(res.headers.get("content-range") ?? "")?.[1];
          if (Number(start) !== have) {
            await res.body?.cancel();
            throw new MetalaError("io", `${url}: asked for bytes from ${have}, the server sent ${res.headers.get("content-range") ?? "no Content-Range"}`);
          }
          offset = have;
        } else if (!res.ok) {
          await res.body?.cancel();
          throw httpStatusError(url, res);
        }
        if (offset === 0 && have > 0) {
          // The server sent the whole file (changed, or no Range support): start over.
          loadedBytes -= have;
          cachedBytes -= have;
        }
        if (!res.body) throw new MetalaError("io", `${url}: the response has no body`);
        await write(name, res.body, offset);
      }
      const stored = await store.readFile(base, name);
      if (stored?.size !== r.size)
        throw new MetalaError("io", `${url}: downloaded ${stored?.size ?? 0} bytes, the server announced ${r.size} (connection dropped? loading again resumes)`);
      manifest.files[name].done = true;
      manifest.storedAt = new Date().toISOString();
      await store.writeManifest(manifest);
    }
    manifest.complete = true;
    manifest.storedAt = new Date().toISOString();
    await store.writeManifest(manifest);
  } catch (e) {
    throw ioError(base, e);
  }
  const files = await storedFiles(store, manifest);
  if (!files) throw new MetalaError("io", `${base}: the model cache lost files just written (storage evicted by the browser?)`);
  return files;
}
