/**
 * The model cache as users see it: which models a browser keeps, how big they
 * are, and evicting them. Works on a page's main thread and in workers alike
 * (both see the same origin's storage).
 */
import { MetalaError } from "../errors.js";
import { CacheApiStore } from "./cache-api-store.js";
import type { ModelManifest, ModelStore } from "./model-store.js";
import { OpfsStore } from "./opfs-store.js";

export type StoreKind = "opfs" | "cache-api";

export interface CachedModel {
  url: string;
  store: StoreKind;
  /** Bytes stored (all files, complete or not). */
  bytes: number;
  files: { name: string; size: number; done: boolean }[];
  /** Every file is there: loading it makes no request. */
  complete: boolean;
  storedAt: string;
}

/** The store for a choice: "auto" is OPFS where the browser has it, else the Cache API. */
export async function openModelStore(choice: "auto" | StoreKind): Promise<ModelStore> {
  const store = choice === "cache-api" ? await CacheApiStore.open() : (await OpfsStore.open()) ?? (choice === "auto" ? await CacheApiStore.open() : null);
  if (!store)
    throw new MetalaError(
      "io",
      choice === "opfs"
        ? "this browser offers no origin private file system (navigator.storage.getDirectory) here"
        : "this context has no model storage (neither OPFS nor the Cache API; both need a secure context: https or localhost)",
    );
  return store;
}

async function stores(): Promise<ModelStore[]> {
  return (await Promise.all([OpfsStore.open(), CacheApiStore.open()])).filter((s): s is OpfsStore | CacheApiStore => s !== null);
}

function describe(m: ModelManifest, store: StoreKind): CachedModel {
  const files = Object.entries(m.files).map(([name, f]) => ({ name, size: f.size, done: f.done }));
  return { url: m.url, store, bytes: files.reduce((a, f) => a + (f.done ? f.size : 0), 0), files, complete: m.complete, storedAt: m.storedAt };
}

/** Model folder URLs as the cache keys them: absolute, without a trailing slash. */
export function normalizeModelUrl(url: string | URL): string {
  const base = (globalThis as { location?: { href: string } }).location?.href;
  return new URL(String(url), base).href.replace(/\/+$/, "");
}

/** Every model this origin keeps, in either store. */
export async function listCachedModels(): Promise<CachedModel[]> {
  const out: CachedModel[] = [];
  for (const s of await stores()) for (const m of await s.list()) out.push(describe(m, s.kind));
  return out.sort((a, b) => a.url.localeCompare(b.url));
}

/** Deletes a model's files from every store; true when something was there. */
export async function evictCachedModel(url: string | URL): Promise<boolean> {
  const key = normalizeModelUrl(url);
  let removed = false;
  for (const s of await stores()) removed = (await s.remove(key)) || removed;
  return removed;
}

/** Deletes every cached model; returns how many there were. */
export async function clearModelCache(): Promise<number> {
  const all = await listCachedModels();
  for (const m of all) await evictCachedModel(m.url);
  return all.length;
}
