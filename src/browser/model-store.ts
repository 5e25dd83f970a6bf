/**
 * Where the browser keeps downloaded model files between visits. Two stores
 * share one interface: the origin private file system (OPFS: files on disk,
 * written in place, so an interrupted download resumes where it stopped)
 * and the Cache API (everywhere, but a file is stored whole or not at all).
 */

/** What is stored for one model folder URL. */
export interface ModelManifest {
  version: 1;
  /** The model folder's URL (no trailing slash). */
  url: string;
  /** Per file: its size and the server's validators, so that a resumed download can ask whether the file changed. */
  files: Record<string, { size: number; etag?: string; lastModified?: string; done: boolean }>;
  /** Every file is stored and verified by size. */
  complete: boolean;
  /** ISO time of the last write. */
  storedAt: string;
}

export interface ModelStore {
  readonly kind: "opfs" | "cache-api";
  readManifest(url: string): Promise<ModelManifest | null>;
  writeManifest(manifest: ModelManifest): Promise<void>;
  /** The stored file, or null. */
  readFile(url: string, name: string): Promise<Blob | null>;
  /** Bytes of `name` already written (a complete or an interrupted download); always 0 where writes cannot resume. */
  storedBytes(url: string, name: string): Promise<number>;
  /** Writes `body` at `offset` (0 replaces the file), reporting each chunk's size. */
  writeFile(url: string, name: string, body: ReadableStream<Uint8Array>, offset: number, onBytes: (n: number) => void): Promise<void>;
  list(): Promise<ModelManifest[]>;
  /** Deletes everything stored for `url`; false when there was nothing. */
  remove(url: string): Promise<boolean>;
}

export const MANIFEST_VERSION = 1;

export function parseManifest(text: string): ModelManifest | null {
  try {
    const m = JSON.parse(text) as ModelManifest;
    if (m?.version !== MANIFEST_VERSION || typeof m.url !== "string" || typeof m.files !== "object" || m.files === null) return null;
    return m;
  } catch {
    return null;
  }
}

/** Model files are flat names in a folder; anything else could escape the store's directory. */
export function checkFileName(name: string): void {
  if (!name || name === "." || name === ".." || /[/\\]/.test(name)) throw new Error(`unsafe model file name ${JSON.stringify(name)}`);
}
