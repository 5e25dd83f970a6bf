// The scheduler's choices from a cost table, the cost interpolation, and the
// cost cache file (XDG_CACHE_HOME respected). Engines here are stand-ins:
// only their kinds matter to these decisions.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Scheduler, EngineFailure } from "../dist/runtime/scheduler.js";
import { prefillMs } from "../dist/runtime/costs.js";
import { defaultCostCache, FileCostCache } from "../dist/runtime/cost-cache.js";
import { isSoftwareAdapter } from "../dist/runtime/devices.js";

const stub = (kind) => ({ kind, config: {}, description: kind, createSession() {}, async dispose() {} });

// wasm: cheap to start, 1 ms per token; webgpu: 5 ms to start, then fast; decode is faster on the CPU
const COSTS = {
  handoffMs: 0.5,
  engines: {
    wasm: { prefill: [{ tokens: 1, ms: 1 }, { tokens: 16, ms: 16 }, { tokens: 256, ms: 256 }], stepMs: 1 },
    webgpu: { prefill: [{ tokens: 1, ms: 5 }, { tokens: 16, ms: 6 }, { tokens: 256, ms: 10 }], stepMs: 3 },
  },
};

function scheduler(policy = { prefill: "auto", decode: "auto" }, costs = COSTS, kinds = ["wasm", "webgpu"]) {
  const warnings = [];
  const s = new Scheduler(new Map(kinds.map((k) => [k, stub(k)])), policy, costs, async () => stub("reference"), (m) => warnings.push(m));
  s.warnings = warnings;
  return s;
}

test("prefillMs: measured points, linear between, last slope beyond", () => {
  const c = COSTS.engines.webgpu;
  assert.is(prefillMs(c, 1), 5);
  assert.is(prefillMs(c, 16), 6);
  assert.is(prefillMs(c, 136), 8);
  assert.is(prefillMs(c, 496), 14);
  assert.is(prefillMs({ prefill: [], stepMs: 2 }, 10), 20, "no prefill points: steps");
});

test("auto: decode on the faster stepper, prefill by length including hand-offs", () => {
  const s = scheduler();
  assert.is(s.decodeKind(), "wasm");
  assert.is(s.prefillKind(1, null), "wasm");
  // 4 tokens: wasm 4 ms vs webgpu 5.27 + 0.5 hand-off
  assert.is(s.prefillKind(4, null), "wasm");
  // 16 tokens: wasm 16 ms vs webgpu 6 + 0.5
  assert.is(s.prefillKind(16, null), "webgpu");
  assert.is(s.prefillKind(5000, "wasm"), "webgpu");
  // 6 tokens with the state on the CPU: webgpu 5.4 + 2 hand-offs = 6.4 > 6
  assert.is(s.prefillKind(6, "wasm"), "wasm");
});

test("auto: the GPU decodes when it steps faster", () => {
  const costs = structuredClone(COSTS);
  costs.engines.webgpu.stepMs = 0.5;
  const s = scheduler(undefined, costs);
  assert.is(s.decodeKind(), "webgpu");
  assert.is(s.prefillKind(1, null), "webgpu", "one token is a decode step");
  // 3 tokens: wasm 3 ms + 0.5 hand-off to the GPU beats the GPU's 5.13 ms
  assert.is(s.prefillKind(3, null), "wasm");
});

test("observed times refine the costs: a CPU that slows down loses decode to the GPU", () => {
  const s = scheduler();
  s.observe("wasm", "step", 1, 2);
  assert.ok(Math.abs(s.costs.engines.wasm.stepMs - 1.3) < 1e-12, "30% of the way");
  assert.is(s.decodeKind(), "wasm");
  for (let i = 0; i < 3; i++) s.observe("wasm", "step", 1, 10);
  assert.is(s.decodeKind(), "webgpu");
  assert.is(COSTS.engines.wasm.stepMs, 1, "the table given (and cached) is not changed");
  // a prefill 10x slower than predicted scales the curve by 1 + 0.3 * 9
  s.observe("webgpu", "prefill", 256, 100);
  assert.ok(Math.abs(prefillMs(s.costs.engines.webgpu, 256) - 37) < 1e-9);
  assert.ok(Math.abs(prefillMs(s.costs.engines.webgpu, 16) - 6 * 3.7) < 1e-9);
});

test("explicit choices are honoured whatever the costs", () => {
  const s = scheduler({ prefill: "wasm", decode: "webgpu" });
  assert.is(s.prefillKind(5000, null), "wasm");
  assert.is(s.decodeKind(), "webgpu");
});

test("without costs: everything on the decode engine, the CPU", () => {
  const s = scheduler(undefined, null);
  assert.is(s.decodeKind(), "wasm");
  assert.is(s.prefillKind(5000, null), "wasm");
});

test("a lost GPU is never chosen again, even when it was forced; one warning", async () => {
  const s = scheduler({ prefill: "webgpu", decode: "webgpu" }, null, ["webgpu"]);
  assert.is(s.prefillKind(100, null), "webgpu");
  await s.markLost(new EngineFailure("webgpu", new Error("device lost")));
  await s.markLost(new EngineFailure("webgpu", new Error("device lost")));
  assert.is(s.prefillKind(100, null), "reference", "fell back to the CPU engine made on demand");
  assert.is(s.decodeKind(), "reference");
  assert.is(s.warnings.length, 1);
  assert.match(s.warnings[0], /webgpu engine failed: device lost; continuing on the CPU/);
});

test("engine faults from a GPU are wrapped; input errors are not", async () => {
  const s = scheduler();
  const { MetalaError } = await import("../dist/errors.js");
  try {
    await s.run("webgpu", async () => {
      throw new Error("validation error");
    });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, EngineFailure);
  }
  try {
    await s.run("webgpu", async () => {
      throw new MetalaError("input", "token id 999 is out of range");
    });
    assert.unreachable();
  } catch (e) {
    assert.is(e.kind, "input");
  }
  // and the queue goes on after failures
  assert.is(await s.run("webgpu", async () => 7), 7);
});

test("software adapters are recognised by flag or by name", () => {
  assert.ok(isSoftwareAdapter({ available: true, isFallbackAdapter: true }));
  assert.ok(isSoftwareAdapter({ available: true, vendor: "google", architecture: "", device: "", description: "SwiftShader Device (Subzero)" }));
  assert.ok(isSoftwareAdapter({ available: true, vendor: "mesa", device: "llvmpipe (LLVM 15.0.6, 256 bits)" }));
  assert.not.ok(isSoftwareAdapter({ available: true, vendor: "nvidia", architecture: "hopper", device: "NVIDIA H200", description: "" }));
  assert.not.ok(isSoftwareAdapter({ available: false }));
});

test("cost cache: a JSON file under $XDG_CACHE_HOME/metala, damaged files ignored", async () => {
  const dir = mkdtempSync(join(tmpdir(), "metala-cache-"));
  const saved = process.env.XDG_CACHE_HOME;
  process.env.XDG_CACHE_HOME = dir;
  try {
    const cache = defaultCostCache();
    assert.instance(cache, FileCostCache);
    assert.is(cache.path, join(dir, "metala", "costs.json"));
    assert.is(await cache.get("k"), null);
    await cache.set("k", COSTS);
    await cache.set("k2", COSTS);
    assert.equal(await cache.get("k"), COSTS);
    const onDisk = JSON.parse(readFileSync(cache.path, "utf8"));
    assert.equal(Object.keys(onDisk.entries).sort(), ["k", "k2"]);
    writeFileSync(cache.path, "{not json");
    assert.is(await cache.get("k"), null);
    writeFileSync(cache.path, JSON.stringify({ version: 1, entries: { k: { handoffMs: "x" } } }));
    assert.is(await cache.get("k"), null, "malformed table ignored");
  } finally {
    if (saved === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = saved;
  }
  // an unwritable place (here: below a file) is not an error
  const file = join(dir, "a-file");
  writeFileSync(file, "");
  const ro = new FileCostCache(join(file, "metala", "costs.json"));
  await ro.set("k", COSTS);
  assert.is(await ro.get("k"), null);
});

test.run();
