import { checkFileName, parseManifest, type ModelManifest, type ModelStore } from "./model-store.js";

const ROOT = "metala-models";
const MANIFEST = "manifest.json";

/** The parts of the OPFS API used here (not yet in every TypeScript DOM library). */
interface SyncAccessHandle {
  write(buffer: ArrayBufferView, options?: { at?: number }): number;
  truncate(size: number): void;
  getSize(): number;
  flush(): void;
  close(): void;
}
type FileHandle = FileSystemFileHandle & { createSyncAccessHandle?: () => Promise<SyncAccessHandle> };

/** A folder name for a URL: the URL itself may hold any character. */
async function folderName(url: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(url));
  return [...new Uint8Array(digest).slice(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function fileIfExists(dir: FileSystemDirectoryHandle, name: string): Promise<File | null> {
  try {
    return await (await dir.getFileHandle(name)).getFile();
  } catch {
    return null;
  }
}

/**
 * OPFS: one folder per model URL holding its files and a manifest.json. In a
 * worker, files are written through a sync access handle, in place, so that
 * the bytes of an interrupted download stay and the next visit resumes with a
 * Range request; on a page's main thread createWritable is used, which only
 * keeps a file once it is complete.
 */
export class OpfsStore implements ModelStore {
  readonly kind = "opfs";
  private constructor(private readonly root: FileSystemDirectoryHandle) {}

  static async open(): Promise<OpfsStore | null> {
    const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
    if (typeof storage?.getDirectory !== "function") return null;
    try {
      return new OpfsStore(await (await storage.getDirectory()).getDirectoryHandle(ROOT, { create: true }));
    } catch {
      return null; // e.g. private browsing modes that deny OPFS
    }
  }

  private async dir(url: string, create: boolean): Promise<FileSystemDirectoryHandle | null> {
    try {
      return await this.root.getDirectoryHandle(await folderName(url), { create });
    } catch {
      return null;
    }
  }

  async readManifest(url: string): Promise<ModelManifest | null> {
    const dir = await this.dir(url, false);
    const file = dir && (await fileIfExists(dir, MANIFEST));
    const m = file ? parseManifest(await file.text()) : null;
    return m?.url === url ? m : null;
  }

  async writeManifest(manifest: ModelManifest): Promise<void> {
    const dir = (await this.dir(manifest.url, true))!;
    const bytes = new TextEncoder().encode(JSON.stringify(manifest));
    await this.writeFile(manifest.url, MANIFEST, new Blob([bytes]).stream(), 0, () => {}, dir);
  }

  async readFile(url: string, name: string): Promise<Blob | null> {
    checkFileName(name);
    const dir = await this.dir(url, false);
    return dir && fileIfExists(dir, name);
  }

  async storedBytes(url: string, name: string): Promise<number> {
    return (await this.readFile(url, name))?.size ?? 0;
  }

  async writeFile(
    url: string,
    name: string,
    body: ReadableStream<Uint8Array>,
    offset: number,
    onBytes: (n: number) => void,
    known?: FileSystemDirectoryHandle,
  ): Promise<void> {
    checkFileName(name);
    const dir = known ?? (await this.dir(url, true))!;
    const handle = (await dir.getFileHandle(name, { create: true })) as FileHandle;
    const reader = body.getReader();
    if (typeof handle.createSyncAccessHandle === "function") {
      const sync = await handle.createSyncAccessHandle();
      try {
        sync.truncate(offset);
        let at = offset;
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          sync.write(value, { at });
          at += value.length;
          onBytes(value.length);
        }
        sync.flush();
      } finally {
        sync.close();
      }
      return;
    }
    const writable = await handle.createWritable({ keepExistingData: offset > 0 });
    try {
      await writable.truncate(offset);
      await writable.seek(offset);
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        await writable.write(value as Uint8Array<ArrayBuffer>);
        onBytes(value.length);
      }
      await writable.close();
    } catch (e) {
      await writable.abort().catch(() => undefined);
      throw e;
    }
  }

  async list(): Promise<ModelManifest[]> {
    const out: ModelManifest[] = [];
    for await (const entry of (this.root as unknown as { values(): AsyncIterable<FileSystemHandle> }).values()) {
      if (entry.kind !== "directory") continue;
      const file = await fileIfExists(entry as FileSystemDirectoryHandle, MANIFEST);
      const m = file ? parseManifest(await file.text()) : null;
      if (m) out.push(m);
    }
    return out;
  }

  async remove(url: string): Promise<boolean> {
    try {
      await this.root.removeEntry(await folderName(url), { recursive: true });
      return true;
    } catch {
      return false;
    }
  }
}
