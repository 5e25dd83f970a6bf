import { MetalaError } from "../errors.js";
import { checkReadArgs, shortReadError, type ByteSource } from "./byte-source.js";
import { MemorySource } from "./memory-source.js";
import { httpStatusError } from "./http.js";

export interface UrlSourceOptions {
  /** The fetch to use (tests, custom auth); the global fetch by default. */
  fetch?: typeof fetch;
  /** Extra request headers (e.g. Authorization for private hubs). */
  headers?: Record<string, string>;
  /**
   * A server that ignores Range answers the first request with the whole file.
   * Files up to this size are then kept in memory (the source's label says
   * so); larger ones are refused with an error, since holding them would
   * defeat reading one tensor at a time. Default 256 MiB.
   */
  maxWholeFileBytes?: number;
}

const DEFAULT_MAX_WHOLE_FILE = 256 * 1024 * 1024;

/**
 * Opens a file over HTTP(S) and reads it with Range requests. The first
 * request asks for one byte, which tells the size (Content-Range) and whether
 * the server honours Range at all.
 */
export async function openUrlSource(url: string, options: UrlSourceOptions = {}): Promise<ByteSource> {
  const doFetch = options.fetch ?? globalThis.fetch;
  const headers = options.headers ?? {};
  const probe = await request(doFetch, url, { ...headers, Range: "bytes=0-0" });

  if (probe.status === 206) {
    await discardBody(probe);
    const size = totalFromContentRange(probe.headers.get("content-range")) ?? (await sizeFromHead(doFetch, url, headers));
    if (size === undefined)
      throw new MetalaError("io", `${url}: the server honours Range but tells no file size (no readable Content-Range or Content-Length; a CORS server must expose Content-Range)`);
    return new UrlSource(doFetch, url, headers, size);
  }
  if (probe.status === 416) {
    // Only an empty file cannot satisfy bytes=0-0.
    await discardBody(probe);
    return new MemorySource(new Uint8Array(0), url);
  }
  if (probe.status === 200) return wholeFileFallback(url, probe, options.maxWholeFileBytes ?? DEFAULT_MAX_WHOLE_FILE);
  await discardBody(probe);
  throw httpStatusError(url, probe);
}

class UrlSource implements ByteSource {
  readonly label: string;
  constructor(
    private readonly doFetch: typeof fetch,
    private readonly url: string,
    private readonly headers: Record<string, string>,
    readonly size: number,
  ) {
    this.label = url;
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    checkReadArgs(this, offset, length, into);
    if (length === 0) return into ?? new Uint8Array(0);
    const last = offset + length - 1;
    const res = await request(this.doFetch, this.url, { ...this.headers, Range: `bytes=${offset}-${last}` });
    if (res.status !== 206) {
      await discardBody(res);
      throw new MetalaError("io", `${this.url}: asked for bytes ${offset}-${last}, got HTTP ${res.status} instead of 206 Partial Content`);
    }
    const range = parseContentRange(res.headers.get("content-range"));
    if (range && (range.start !== offset || range.end !== last)) {
      await discardBody(res);
      throw new MetalaError("io", `${this.url}: asked for bytes ${offset}-${last}, the server sent ${range.start}-${range.end}`);
    }
    const bytes = await bodyBytes(res, this.url);
    if (bytes.length !== length) throw shortReadError(this, offset, length, bytes.length);
    if (!into) return bytes;
    into.set(bytes);
    return into;
  }

  async close(): Promise<void> {}
}

async function wholeFileFallback(url: string, res: Response, maxBytes: number): Promise<ByteSource> {
  const declared = Number(res.headers.get("content-length") ?? NaN);
  const refuse = (size: string) =>
    new MetalaError(
      "io",
      `${url}: the server ignores Range requests and the file is ${size}, more than the ${maxBytes} bytes this loader will hold in memory; serve it from a server that supports Range (any static file server or CDN does)`,
    );
  if (Number.isFinite(declared) && declared > maxBytes) {
    await discardBody(res);
    throw refuse(`${declared} bytes`);
  }
  const bytes = await bodyBytes(res, url);
  if (bytes.length > maxBytes) throw refuse(`at least ${bytes.length} bytes`);
  return new MemorySource(bytes, `${url} (downloaded whole: the server ignores Range requests)`);
}

async function request(doFetch: typeof fetch, url: string, headers: Record<string, string>, method = "GET"): Promise<Response> {
  try {
    // The browser cache may merge ranges oddly; each range is read once anyway.
    return await doFetch(url, { method, headers, cache: "no-store" });
  } catch (e) {
    throw new MetalaError("io", `${url}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

async function bodyBytes(res: Response, url: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw new MetalaError("io", `${url}: download failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

async function discardBody(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // The connection is being dropped anyway; the status already told what we need.
  }
}

async function sizeFromHead(doFetch: typeof fetch, url: string, headers: Record<string, string>): Promise<number | undefined> {
  const res = await request(doFetch, url, headers, "HEAD");
  if (!res.ok) return undefined;
  const n = Number(res.headers.get("content-length") ?? NaN);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** `bytes 0-0/1234` -> {start 0, end 0, total 1234}; total undefined for `*`. */
function parseContentRange(header: string | null): { start: number; end: number; total: number | undefined } | undefined {
  const m = header ? /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(header) : null;
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === "*" ? undefined : Number(m[3]) };
}

function totalFromContentRange(header: string | null): number | undefined {
  const total = parseContentRange(header)?.total;
  return total !== undefined && Number.isSafeInteger(total) ? total : undefined;
}
