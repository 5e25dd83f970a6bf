import { isCostTable, type CostTable } from "./costs.js";

/**
 * Where measured cost tables persist between runs, by key (devices + model
 * fingerprint + dtype), so calibration runs once per machine and model.
 */
export interface CostCache {
  get(key: string): Promise<CostTable | null>;
  set(key: string, table: CostTable): Promise<void>;
}

const FILE_VERSION = 1;
const STORAGE_KEY = "metala-cost-tables";

type Entries = Record<string, CostTable>;

function isNode(): boolean {
  return typeof process !== "undefined" && typeof process.versions?.node === "string";
}

/** The platform's cache: a JSON file under the user's cache directory in Node, localStorage in browsers, none elsewhere. */
export function defaultCostCache(): CostCache | null {
  if (isNode()) return new FileCostCache(nodeCachePath());
  const ls = (globalThis as { localStorage?: Storage }).localStorage;
  return ls ? new StorageCostCache(ls) : null;
}

/** $XDG_CACHE_HOME/metala/costs.json, else ~/.cache (Linux), ~/Library/Caches (macOS), %LOCALAPPDATA% (Windows). */
function nodeCachePath(): string {
  const env = process.env;
  const home = env.HOME ?? env.USERPROFILE ?? ".";
  let base = env.XDG_CACHE_HOME;
  if (!base) {
    if (process.platform === "darwin") base = `${home}/Library/Caches`;
    else if (process.platform === "win32") base = env.LOCALAPPDATA ?? `${home}/AppData/Local`;
    else base = `${home}/.cache`;
  }
  return `${base}/metala/costs.json`;
}

function parseEntries(text: string | null): Entries {
  if (!text) return {};
  try {
    const v = JSON.parse(text);
    if (v?.version !== FILE_VERSION || typeof v.entries !== "object" || v.entries === null) return {};
    const out: Entries = {};
    for (const [k, t] of Object.entries(v.entries)) if (isCostTable(t)) out[k] = t;
    return out;
  } catch {
    return {}; // a damaged cache is only a lost measurement: recalibrate
  }
}

function serialize(entries: Entries): string {
  return JSON.stringify({ version: FILE_VERSION, entries }, null, 1);
}

/**
 * A JSON file. Failures to read or write are not errors: a read-only home
 * directory only means calibrating again next time.
 */
export class FileCostCache implements CostCache {
  constructor(readonly path: string) {}

  private async load(): Promise<Entries> {
    const fs = await import("node:fs/promises");
    try {
      return parseEntries(await fs.readFile(this.path, "utf8"));
    } catch {
      return {};
    }
  }

  async get(key: string): Promise<CostTable | null> {
    return (await this.load())[key] ?? null;
  }

  async set(key: string, table: CostTable): Promise<void> {
    const fs = await import("node:fs/promises");
    const path = await import("node:path");
    try {
      const entries = await this.load();
      entries[key] = table;
      await fs.mkdir(path.dirname(this.path), { recursive: true });
      // Write then rename, so a concurrent reader never sees half a file.
      const tmp = `${this.path}.${process.pid}.tmp`;
      await fs.writeFile(tmp, serialize(entries));
      await fs.rename(tmp, this.path);
    } catch {
      // Not cached; the table is still used for this run.
    }
  }
}

export class StorageCostCache implements CostCache {
  constructor(private readonly storage: Storage) {}

  async get(key: string): Promise<CostTable | null> {
    try {
      return parseEntries(this.storage.getItem(STORAGE_KEY))[key] ?? null;
    } catch {
      return null;
    }
  }

  async set(key: string, table: CostTable): Promise<void> {
    try {
      const entries = parseEntries(this.storage.getItem(STORAGE_KEY));
      entries[key] = table;
      this.storage.setItem(STORAGE_KEY, serialize(entries));
    } catch {
      // Storage full or denied: calibrate again next time.
    }
  }
}
