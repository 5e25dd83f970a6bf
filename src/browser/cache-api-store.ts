import { checkFileName, parseManifest, type ModelManifest, type ModelStore } from "./model-store.js";

const CACHE_NAME = "metala-models-v1";
/** Manifests live under a reserved file name beside the model's own files. */
const MANIFEST = ".metala-manifest.json";

function key(url: string, name: string): string {
  return `${url}/${encodeURIComponent(name)}`;
}

/**
 * The Cache API: available wherever service workers are, OPFS or not. A file
 * is stored whole (cache.put of a streamed response), so an interrupted
 * download starts over.
 */
export class CacheApiStore implements ModelStore {
  readonly kind = "cache-api";
  private constructor(private readonly cache: Cache) {}

  static async open(): Promise<CacheApiStore | null> {
    const caches = (globalThis as { caches?: CacheStorage }).caches;
    if (!caches) return null;
    try {
      return new CacheApiStore(await caches.open(CACHE_NAME));
    } catch {
      return null; // opaque origins and some private modes refuse
    }
  }

  async readManifest(url: string): Promise<ModelManifest | null> {
    const res = await this.cache.match(key(url, MANIFEST));
    const m = res ? parseManifest(await res.text()) : null;
    return m?.url === url ? m : null;
  }

  async writeManifest(manifest: ModelManifest): Promise<void> {
    await this.cache.put(key(manifest.url, MANIFEST), new Response(JSON.stringify(manifest), { headers: { "content-type": "application/json" } }));
  }

  async readFile(url: string, name: string): Promise<Blob | null> {
    checkFileName(name);
    const res = await this.cache.match(key(url, name));
    return res ? res.blob() : null;
  }

  async storedBytes(): Promise<number> {
    return 0;
  }

  async writeFile(url: string, name: string, body: ReadableStream<Uint8Array>, offset: number, onBytes: (n: number) => void): Promise<void> {
    checkFileName(name);
    if (offset !== 0) throw new Error("the Cache API store cannot append to a file");
    const counted = body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, ctl) {
          onBytes(chunk.length);
          ctl.enqueue(chunk);
        },
      }),
    );
    await this.cache.put(key(url, name), new Response(counted, { headers: { "content-type": "application/octet-stream" } }));
  }

  async list(): Promise<ModelManifest[]> {
    const out: ModelManifest[] = [];
    for (const req of await this.cache.keys()) {
      if (!req.url.endsWith(`/${encodeURIComponent(MANIFEST)}`)) continue;
      const res = await this.cache.match(req);
      const m = res ? parseManifest(await res.text()) : null;
      if (m) out.push(m);
    }
    return out;
  }

  async remove(url: string): Promise<boolean> {
    const prefix = `${url}/`;
    let removed = false;
    for (const req of await this.cache.keys()) if (req.url.startsWith(prefix) && !req.url.slice(prefix.length).includes("/")) removed = (await this.cache.delete(req)) || removed;
    return removed;
  }
}
