// loadModel: progress, tokenizer, device policy, calibration and its cache.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { loadModel } from "../dist/index.js";
import { FIXTURES_DIR } from "./helpers/fixtures.mjs";

const TINY = join(FIXTURES_DIR, "tiny-f32");

/** A CostCache that remembers in memory and counts its calls. */
function memoryCache() {
  const map = new Map();
  return {
    gets: 0,
    sets: 0,
    async get(k) {
      this.gets++;
      return map.get(k) ?? null;
    },
    async set(k, v) {
      this.sets++;
      map.set(k, v);
    },
  };
}

test("progress reports weight bytes up to the total; no tokenizer in the folder means null", async () => {
  const seen = [];
  const model = await loadModel(TINY, { device: "reference", onProgress: (p) => seen.push(p) });
  assert.ok(seen.length > 5);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i].loadedBytes >= seen[i - 1].loadedBytes);
  const last = seen[seen.length - 1];
  assert.is(last.phase, "weights");
  assert.is(last.loadedBytes, last.totalBytes);
  assert.is(model.tokenizer, null);
  assert.equal(model.engines.map((e) => e.kind), ["reference"]);
  await model.dispose();
});

test("two engines: costs measured once, then taken from the cache", async () => {
  const cache = memoryCache();
  const warnings = [];
  const a = await loadModel(TINY, { prefillDevice: "reference", decodeDevice: "auto", costCache: cache, onWarning: (m) => warnings.push(m) });
  assert.equal(a.engines.map((e) => e.kind).sort(), ["reference", "wasm"]);
  assert.is(cache.sets, 1);
  const costs = a.scheduler.costs;
  assert.ok(costs.engines.wasm.stepMs > 0 && costs.engines.reference.prefill.length >= 2);
  assert.is(a.scheduler.prefillKind(500, null), "reference", "forced prefill");
  await a.dispose();
  const b = await loadModel(TINY, { prefillDevice: "reference", decodeDevice: "auto", costCache: cache });
  assert.is(cache.sets, 1, "not measured again");
  assert.equal(b.scheduler.costs, costs);
  await b.dispose();
});

test("auto: the CPU engine, never a software GPU; explicit device errors surface", async () => {
  const model = await loadModel(TINY, { costCache: null });
  assert.ok(model.engines.every((e) => e.kind !== "reference"));
  const r = await model.generateText([5, 9, 13], { maxNewTokens: 4, ignoreEos: true });
  assert.is(r.tokens.length, 4);
  await model.dispose();
  try {
    await loadModel(TINY, { device: "reference", dtype: "q8" });
    assert.unreachable();
  } catch (e) {
    assert.is(e.name, "MetalaError");
    assert.match(e.message, "f32 only");
  }
});

test("bad folders are MetalaErrors", async () => {
  try {
    await loadModel(join(FIXTURES_DIR, "no-such-model"), { device: "reference" });
    assert.unreachable();
  } catch (e) {
    assert.is(e.name, "MetalaError");
  }
});

test.run();
