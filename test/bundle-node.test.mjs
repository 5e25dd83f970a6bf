// The rollup bundles: the Node ESM bundle runs the model (in process and in
// a worker thread, through the worker runtime) and gives the reference
// engine's greedy tokens; the package's exports resolve to it; the browser
// bundle is self-contained (no bare or node: imports, every file it opens by
// URL shipped beside it).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { loadModel as loadUnbundled } from "../dist/runtime/load.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const NODE_BUNDLE = join(ROOT, "dist", "bundle", "node");
const BROWSER_BUNDLE = join(ROOT, "dist", "bundle", "browser");
const MODEL = join(ROOT, "test", "fixtures", "tiny-f32");
const PROMPT = [1, 17, 42, 99, 7];
const GREEDY = { temperature: 0, maxNewTokens: 16, ignoreEos: true };

let expected;
test.before(async () => {
  // The expected tokens come from the unbundled reference engine, a different engine and build from the one under test.
  const ref = await loadUnbundled(MODEL, { device: "reference", costCache: null, tokenizer: null });
  expected = (await ref.generateText(PROMPT, GREEDY)).tokens;
  await ref.dispose();
});

test("the Node bundle's wasm engine gives the reference engine's greedy tokens", async () => {
  const { loadModel } = await import("../dist/bundle/node/index.js");
  const model = await loadModel(MODEL, { device: "wasm", costCache: null, tokenizer: null });
  try {
    assert.is(model.engines[0].kind, "wasm");
    const out = await model.generateText(PROMPT, GREEDY);
    assert.equal(out.tokens, expected);
  } finally {
    await model.dispose();
  }
});

test("the package name resolves to the Node bundle under the node condition", async () => {
  assert.is(fileURLToPath(import.meta.resolve("metala")), join(NODE_BUNDLE, "index.js"));
  assert.is(fileURLToPath(import.meta.resolve("metala/worker")), join(NODE_BUNDLE, "worker.js"));
  const pkg = await import("metala");
  assert.type(pkg.loadModel, "function");
});

test("the worker runtime (Node bundle) streams the same tokens, snapshots, forks and aborts", async () => {
  const { loadModelInWorker } = await import("metala/worker");
  const phases = new Set();
  const model = await loadModelInWorker(MODEL, { device: "wasm", onProgress: (p) => phases.add(p.phase), onWarning: () => {} });
  try {
    assert.ok(phases.has("weights"), "load reports progress");
    assert.is(model.info.engines[0].kind, "wasm");
    assert.is(model.info.cache, "path");
    assert.is(model.info.config.vocabSize, 256);

    const streamed = [];
    const g = model.generate(PROMPT, GREEDY);
    for await (const piece of g) if (piece.token !== null) streamed.push(piece.token);
    assert.equal(streamed, expected);
    assert.equal(g.result.tokens, expected);
    assert.is(g.result.stats.prefillEngine, "wasm");

    // A session fed the prompt and snapshotted continues like a fork restored from that snapshot.
    const a = await model.createSession();
    const head = await a.generate(PROMPT, { ...GREEDY, maxNewTokens: 4 }).complete();
    assert.equal(head.tokens, expected.slice(0, 4));
    const snap = await a.snapshot();
    assert.instance(snap, Uint8Array);
    const b = await model.restoreSession(snap);
    const c = await a.fork();
    const next = [expected[4]];
    const ra = await a.generate(next, { ...GREEDY, maxNewTokens: 6 }).complete();
    const rb = await b.generate(next, { ...GREEDY, maxNewTokens: 6 }).complete();
    const rc = await c.generate(next, { ...GREEDY, maxNewTokens: 6 }).complete();
    assert.equal(rb.tokens, ra.tokens);
    assert.equal(rc.tokens, ra.tokens);

    // Feeding the prompt's head, then generating from its last token, continues like the whole prompt at once.
    const fed = await model.createSession();
    await fed.feed(PROMPT.slice(0, -1));
    assert.equal((await fed.generate(PROMPT.slice(-1), GREEDY).complete()).tokens, expected);
    await fed.dispose();

    const corrupt = snap.slice();
    corrupt[corrupt.length - 1] ^= 0xff;
    try {
      await model.restoreSession(corrupt);
      assert.unreachable("a corrupt snapshot was accepted");
    } catch (e) {
      assert.is(e.name, "MetalaError");
      assert.is(e.kind, "format");
    }

    const abort = new AbortController();
    const pieces = [];
    try {
      for await (const piece of model.generate(PROMPT, { maxNewTokens: 100000, ignoreEos: true, temperature: 1, seed: 3, signal: abort.signal })) {
        pieces.push(piece);
        if (pieces.length === 3) abort.abort();
      }
      assert.unreachable("the generation was not aborted");
    } catch (e) {
      assert.is(e.kind, "aborted");
    }
    assert.ok(pieces.length < 100, `aborted after ${pieces.length} pieces`);
    // The worker is still usable after an abort.
    assert.equal((await model.generateText(PROMPT, GREEDY)).tokens, expected);
  } finally {
    await model.dispose();
  }
});

test("a user error in the worker arrives as a MetalaError of its kind", async () => {
  const { loadModelInWorker } = await import("metala/worker");
  const missing = join(ROOT, "test", "fixtures", "no-such-model");
  try {
    await loadModelInWorker(missing, { onWarning: () => {} });
    assert.unreachable("a missing folder loaded");
  } catch (e) {
    assert.is(e.name, "MetalaError");
    assert.is(e.kind, "io");
    assert.ok(e.message.includes(missing), e.message);
  }
});

/** Every file of a bundle folder, recursively. */
function filesOf(dir) {
  return readdirSync(dir, { recursive: true }).map((f) => join(dir, String(f))).filter((f) => statSync(f).isFile());
}

const IMPORT_SPEC = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])([^"']+)\1/g;
const URL_SPEC = /new URL\(\s*(["'])([^"']+)\1\s*,\s*import\.meta\.url\s*\)/g;

for (const [name, dir] of [["browser", BROWSER_BUNDLE], ["node", NODE_BUNDLE]]) {
  test(`the ${name} bundle ships every file it imports or opens by URL`, () => {
    const js = filesOf(dir).filter((f) => f.endsWith(".js"));
    assert.ok(js.length > 0);
    for (const file of js) {
      const code = readFileSync(file, "utf8");
      for (const [, , spec] of code.matchAll(IMPORT_SPEC)) {
        if (name === "node" && !spec.startsWith(".")) continue; // dependencies stay external in Node
        assert.ok(spec.startsWith("./") || spec.startsWith("../"), `${file} imports ${spec}`);
        assert.ok(existsSync(resolve(dirname(file), spec)), `${file} imports ${spec}, which is missing`);
      }
      for (const [, , spec] of code.matchAll(URL_SPEC)) assert.ok(existsSync(resolve(dirname(file), spec)), `${file} opens ${spec}, which is missing`);
    }
    const assets = readdirSync(join(dir, "assets"));
    const sizes = (files) => `${(files.reduce((a, f) => a + statSync(f).size, 0) / 1024).toFixed(0)} KiB (${(files.reduce((a, f) => a + gzipSync(readFileSync(f)).length, 0) / 1024).toFixed(0)} KiB gzip)`;
    console.log(`# ${name} bundle: ${js.length} js files ${sizes(js)}, ${assets.length} assets ${sizes(assets.map((a) => join(dir, "assets", a)))}`);
    for (const wasm of readdirSync(join(ROOT, "dist", "wasm"))) assert.ok(assets.some((a) => a.startsWith(wasm.replace(/\.wasm$/, "-"))), `${wasm} not shipped`);
    for (const wgsl of readdirSync(join(ROOT, "shaders"))) assert.ok(assets.some((a) => a.startsWith(wgsl.replace(/\.wgsl$/, "-"))), `${wgsl} not shipped`);
  });
}

test("the browser bundle has no Node built-ins and no bare imports left", () => {
  for (const file of filesOf(BROWSER_BUNDLE).filter((f) => f.endsWith(".js"))) {
    const code = readFileSync(file, "utf8");
    for (const [, , spec] of code.matchAll(IMPORT_SPEC)) assert.not.ok(spec.startsWith("node:"), `${file} imports ${spec}`);
  }
  assert.ok(existsSync(join(BROWSER_BUNDLE, "model-worker.js")), "the Web Worker entry is there");
});

test.run();
