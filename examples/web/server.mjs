#!/usr/bin/env node
// The demo's static file server: serves the package folder on 127.0.0.1 with
// the headers that make a page cross-origin isolated (COOP/COEP, so the CPU
// engine may use threads), byte ranges (the model loader reads weights with
// Range requests and resumes downloads with If-Range), and HEAD.
//
//   node examples/web/server.mjs [--port N]      (npm run demo)
//
// Only files under the package folder are served, never dot-files or
// node_modules; / redirects to the demo page.
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const PACKAGE_ROOT = fileURLToPath(new URL("../../", import.meta.url));

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".wasm": "application/wasm",
  ".wgsl": "text/plain; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".map": "application/json; charset=utf-8",
};

const ISOLATION = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
};

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` against a file of `size` bytes; null: not satisfiable; undefined: not a single range we serve. */
function parseRange(header, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  let start, end;
  if (m[1] === "") {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) return null;
  return { start, end };
}

/** The file a URL path names, or null when it is outside what this server shows. */
function filePath(root, mounts, urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  for (const [prefix, dir] of Object.entries(mounts))
    if (decoded.startsWith(prefix)) {
      root = resolve(dir);
      decoded = decoded.slice(prefix.length);
      break;
    }
  const parts = decoded.split("/").filter(Boolean);
  if (parts.some((p) => p.startsWith(".") || p === "node_modules" || p.includes("\\"))) return null;
  const full = resolve(root, ...parts);
  return full === root || full.startsWith(root.endsWith(sep) ? root : root + sep) ? full : null;
}

/**
 * Starts the server. `root`: the folder served (default: the package);
 * `mounts`: more folders by URL prefix ({"/extra/": dir}); `isolation`
 * false leaves out COOP/COEP (to see a page without threads); `intercept`
 * (req, res, headers, file) may answer a request itself and return true (tests
 * cut downloads short with it); `port` 0 picks a free one. Resolves to { url, requests, close }, where
 * `requests` logs { method, path, range, status } of every request (tests
 * count downloads with it).
 */
export async function startDemoServer({ root = PACKAGE_ROOT, mounts = {}, isolation = true, intercept, port = 8080, host = "127.0.0.1", quiet = true } = {}) {
  const base = resolve(root);
  const isolationHeaders = isolation ? ISOLATION : {};
  const requests = [];
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const entry = { method: req.method, path: url.pathname, range: req.headers.range ?? null, status: 0 };
    requests.push(entry);
    const send = (status, headers = {}, body) => {
      entry.status = status;
      res.writeHead(status, { ...isolationHeaders, ...headers });
      res.end(body);
      if (!quiet) console.log(`${req.method} ${url.pathname}${entry.range ? ` [${entry.range}]` : ""} ${status}`);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, { Allow: "GET, HEAD" });
    if (url.pathname === "/") return send(302, { Location: "/examples/web/" });
    let path = filePath(base, mounts, url.pathname);
    if (!path) return send(404, { "Content-Type": "text/plain" }, "not found\n");
    let info;
    try {
      info = await stat(path);
      if (info.isDirectory()) {
        if (!url.pathname.endsWith("/")) return send(301, { Location: url.pathname + "/" });
        path = join(path, "index.html");
        info = await stat(path);
      }
    } catch {
      return send(404, { "Content-Type": "text/plain" }, "not found\n");
    }
    const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
    const lastModified = info.mtime.toUTCString();
    const headers = {
      "Content-Type": TYPES[extname(path)] ?? "application/octet-stream",
      "Accept-Ranges": "bytes",
      ETag: etag,
      "Last-Modified": lastModified,
      "Cache-Control": "no-cache",
      // Range reads from a page need the size; a cross-origin page (the model on another host) also needs these exposed.
      "Access-Control-Expose-Headers": "Content-Range, Content-Length, ETag, Last-Modified, Accept-Ranges",
    };
    let start = 0;
    let end = info.size - 1;
    let status = 200;
    const ifRange = req.headers["if-range"];
    const rangeApplies = req.headers.range && (!ifRange || ifRange === etag || ifRange === lastModified);
    if (rangeApplies) {
      const range = parseRange(req.headers.range, info.size);
      if (range === null) return send(416, { ...headers, "Content-Range": `bytes */${info.size}` });
      if (range) {
        ({ start, end } = range);
        status = 206;
        headers["Content-Range"] = `bytes ${start}-${end}/${info.size}`;
      }
    }
    headers["Content-Length"] = String(Math.max(0, end - start + 1));
    if (intercept?.(req, res, { ...isolationHeaders, ...headers, status }, path)) {
      entry.status = status;
      return;
    }
    if (req.method === "HEAD" || info.size === 0) return send(status, headers);
    entry.status = status;
    res.writeHead(status, { ...isolationHeaders, ...headers });
    const stream = createReadStream(path, { start, end });
    stream.on("error", () => res.destroy());
    stream.pipe(res);
    if (!quiet) console.log(`${req.method} ${url.pathname}${entry.range ? ` [${entry.range}]` : ""} ${status}`);
  });
  await new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, host, ok);
  });
  const address = server.address();
  return {
    url: `http://${host}:${address.port}`,
    requests,
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections?.();
        server.close(() => ok());
      }),
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf("--port");
  const port = i > 0 ? Number(process.argv[i + 1]) : 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`server: --port must be a port number, got ${process.argv[i + 1]}`);
    process.exit(2);
  }
  try {
    const s = await startDemoServer({ port, quiet: !process.argv.includes("--verbose") });
    console.log(`metala demo: ${s.url}/examples/web/   (Ctrl+C to stop)`);
  } catch (e) {
    console.error(`server: ${e.code === "EADDRINUSE" ? `port ${port} is in use; pass --port N` : e.message}`);
    process.exit(1);
  }
}
