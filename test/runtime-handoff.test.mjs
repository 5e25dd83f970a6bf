// Sessions on several engines: forced paths, GPU->CPU hand-off, device loss
// mid-prefill and mid-decode, abort, interleaved sessions. The engines are
// the reference engine and doubles of it posing as the GPU ("webgpu") and
// CPU ("wasm") engines (test/helpers/flaky-engine.mjs); expected logits are
// the PyTorch fixture's, greedy tokens are the plain reference engine's.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadFixture, logitsError } from "./helpers/fixtures.mjs";
import { asEngineKind } from "./helpers/flaky-engine.mjs";
import { modelWith, openFixture } from "./helpers/runtime-model.mjs";
import { argmax } from "../dist/generate/sampling.js";

const fx = await openFixture("tiny-f32");
const expected = loadFixture("tiny-f32");
const long = expected.cases.find((c) => c.tokens.length === 300);
const c130 = expected.cases.find((c) => c.tokens.length === 130);
const GEN = { maxNewTokens: 16, ignoreEos: true };

/** Greedy tokens straight from the reference engine, no runtime involved. */
async function referenceGreedy(prompt, n) {
  const s = fx.reference.createSession();
  let logits = (await s.prefill(prompt, "last"))[0];
  const out = [];
  for (let i = 0; i < n; i++) {
    const t = argmax(logits);
    out.push(t);
    logits = await s.step(t);
  }
  s.dispose();
  return out;
}

// a cost table that sends long prompts to the "GPU" and decodes on the "CPU",
// with margins wide enough that the scheduler's refinement from the doubles'
// real timings (Scheduler.observe) cannot flip a choice within a test
const HYBRID_COSTS = {
  handoffMs: 0.1,
  engines: {
    wasm: { prefill: [{ tokens: 1, ms: 1 }, { tokens: 1000, ms: 100000 }], stepMs: 1 },
    webgpu: { prefill: [{ tokens: 1, ms: 50 }, { tokens: 1000, ms: 60 }], stepMs: 100000 },
  },
};

const prompt = long.tokens.slice(0, 70);
const want = await referenceGreedy(prompt, GEN.maxNewTokens);

test("greedy: the first token is the PyTorch model's argmax, and runs repeat exactly", async () => {
  const model = modelWith(fx, [fx.reference]);
  const a = await model.generateText(c130.tokens, GEN);
  const b = await model.generateText(c130.tokens, GEN);
  assert.is(a.tokens[0], argmax(c130.logits[129]));
  assert.equal(a.tokens, b.tokens);
  await model.dispose();
});

test("every forced path and auto give the reference's greedy tokens", async () => {
  const kinds = ["reference", "wasm", "webgpu"];
  for (const prefill of [...kinds, "auto"])
    for (const decode of [...kinds, "auto"]) {
      const gpu = asEngineKind(fx.reference, "webgpu");
      const cpu = asEngineKind(fx.reference, "wasm");
      const model = modelWith(fx, [fx.reference, cpu, gpu], { policy: { prefill, decode }, costs: HYBRID_COSTS });
      const r = await model.generateText(prompt, GEN);
      assert.equal(r.tokens, want, `prefill ${prefill}, decode ${decode}`);
      const p = prefill === "auto" ? "webgpu" : prefill;
      const d = decode === "auto" ? "wasm" : decode;
      assert.is(r.stats.prefillEngine, p, `prefill ${prefill}`);
      assert.equal(r.stats.decodeEngines, [d], `decode ${decode}`);
      if (p === "webgpu") assert.ok(gpu.log.includes("prefill 70"));
      if (d === "wasm") assert.ok(cpu.log.filter((x) => x === "step").length === GEN.maxNewTokens - 1);
      await model.dispose();
    }
});

test("GPU->CPU hand-off after a prefill of every length 1..200 gives the PyTorch logits", async () => {
  const gpu = asEngineKind(fx.reference, "webgpu");
  const cpu = asEngineKind(fx.reference, "wasm");
  const model = modelWith(fx, [cpu, gpu], { policy: { prefill: "webgpu", decode: "wasm" } });
  const seq = model.createSession();
  let worst = 0;
  for (let n = 1; n <= 200; n++) {
    seq.reset();
    await seq.feed(long.tokens.slice(0, n));
    assert.is(seq.location, n === 1 ? "wasm" : "webgpu", `n=${n}`);
    const g = seq.generate([long.tokens[n]], { maxNewTokens: 1 });
    // the generated token is sampled from the logits at position n, computed on the CPU after the hand-off
    const r = await g.complete();
    assert.is(r.stats.prefillEngine, "wasm");
    assert.is(r.tokens[0], argmax(long.logits[n]), `n=${n}`);
    const state = await seq.exportState();
    assert.is(state.position, n + 2);
  }
  // and the logits themselves, through the sequence layer, at a few lengths around chunk edges
  const { StateSequence } = await import("../dist/runtime/session.js");
  for (const n of [1, 2, 63, 64, 65, 127, 128, 129, 200]) {
    const s = new StateSequence({ config: fx.source.config, fingerprint: fx.fingerprint, scheduler: model.scheduler });
    s.append(long.tokens.slice(0, n));
    const a = await s.next();
    assert.is(a.report.engine, n === 1 ? "wasm" : "webgpu");
    s.append([long.tokens[n]]);
    const b = await s.next();
    assert.is(b.report.engine, "wasm");
    worst = Math.max(worst, logitsError([a.logits, b.logits], [long.logits[n - 1], long.logits[n]]));
    s.dispose();
  }
  assert.ok(worst < 1e-4, `worst relative logits error ${worst}`);
  await model.dispose();
});

test("device lost mid-prefill: continues on the CPU from the last good state, same output, one warning", async () => {
  for (const failAfter of [0, 1, 3]) {
    const gpu = asEngineKind(fx.reference, "webgpu", { failAfterCalls: failAfter });
    const cpu = asEngineKind(fx.reference, "wasm");
    const model = modelWith(fx, [cpu, gpu], { policy: { prefill: "webgpu", decode: "auto" }, costs: HYBRID_COSTS, prefillChunk: 16 });
    const r = await model.generateText(prompt, GEN);
    assert.equal(r.tokens, want, `fail after ${failAfter} chunks`);
    assert.is(gpu.failures, 1);
    assert.is(model.warnings.length, 1);
    assert.match(model.warnings[0], /webgpu engine failed: GPU device was lost/);
    // the CPU replayed exactly the chunks the GPU had done, then the rest
    const replay = failAfter * 16;
    assert.equal(cpu.log.filter((x) => x.startsWith("prefill")), [
      ...(replay > 0 ? [`prefill ${replay}`] : []),
      ...Array.from({ length: Math.ceil((70 - replay) / 16) }, (_, i) => `prefill ${Math.min(16, 70 - replay - 16 * i)}`),
    ]);
    await model.dispose();
  }
});

test("device lost mid-prefill: the logits after recovery are the PyTorch logits", async () => {
  const gpu = asEngineKind(fx.reference, "webgpu", { failAfterCalls: 2 });
  const model = modelWith(fx, [gpu], { policy: { prefill: "webgpu", decode: "webgpu" }, prefillChunk: 32 });
  const { StateSequence } = await import("../dist/runtime/session.js");
  const s = new StateSequence({ config: fx.source.config, fingerprint: fx.fingerprint, scheduler: model.scheduler, prefillChunk: 32 });
  s.append(c130.tokens);
  const { logits, report } = await s.next();
  assert.is(report.engine, "reference", "made on demand as the CPU fallback");
  assert.ok(logitsError([logits], [c130.logits[129]]) < 1e-4);
  await model.dispose();
});

test("device lost mid-decode on a GPU-only model: the CPU takes over, same tokens; the model stays usable", async () => {
  const gpu = asEngineKind(fx.reference, "webgpu", { failAfterCalls: 6 }); // the prefill and 5 steps
  const model = modelWith(fx, [gpu], { policy: { prefill: "webgpu", decode: "webgpu" } });
  const other = model.createSession();
  await other.feed(prompt.slice(0, 30)); // call 1: its state is on the GPU when the device goes
  const r = await model.generateText(prompt, GEN); // calls 2..6 run, the 7th fails
  assert.equal(r.tokens, want);
  assert.equal(r.stats.decodeEngines, ["webgpu", "reference"]);
  assert.is(model.warnings.length, 1);
  // the other session's state was on the lost GPU: rebuilt on the CPU from its journal
  const callsBefore = gpu.calls;
  const o = await other.generate(prompt.slice(30), GEN).complete();
  assert.equal(o.tokens, want);
  assert.is(gpu.calls, callsBefore, "the lost GPU is not used again");
  assert.is(model.warnings.length, 1);
  await model.dispose();
});

test("a long GPU decode reads its state back every journalLimit tokens: the replay after a loss stays short", async () => {
  const gpu = asEngineKind(fx.reference, "webgpu", { failAfterCalls: 1 + 13 }); // the prefill, then 13 steps
  const cpu = asEngineKind(fx.reference, "wasm");
  const model = modelWith(fx, [gpu, cpu], { policy: { prefill: "webgpu", decode: "webgpu" }, journalLimit: 5 });
  const r = await model.generateText(prompt, GEN);
  assert.equal(r.tokens, want);
  // read back after the 70-token prefill and after steps 5 and 10: steps 11..13 are replayed
  assert.equal(cpu.log.filter((x) => x.startsWith("prefill")), ["prefill 3"]);
  await model.dispose();
});

test("abort mid-prefill: stops between pieces, keeps what was consumed, the session goes on", async () => {
  const ac = new AbortController();
  let calls = 0;
  const aborting = {
    ...fx.reference,
    kind: "wasm",
    createSession() {
      const inner = fx.reference.createSession();
      return {
        ...Object.fromEntries(["step", "exportState", "importState", "reset", "dispose"].map((m) => [m, (...a) => inner[m](...a)])),
        async prefill(tokens, w) {
          if (++calls === 2) ac.abort();
          return inner.prefill(tokens, w);
        },
      };
    },
  };
  const model = modelWith(fx, [aborting], { prefillChunk: 16 });
  const s = model.createSession();
  try {
    await s.generate(prompt, { ...GEN, signal: ac.signal }).complete();
    assert.unreachable();
  } catch (e) {
    assert.is(e.name, "MetalaError");
    assert.is(e.kind, "aborted");
  }
  assert.is(s.position, 32);
  s.reset();
  const r = await s.generate(prompt, GEN).complete();
  assert.equal(r.tokens, want);
  await model.dispose();
});

test("abort mid-decode ends the generation; tokens so far were streamed", async () => {
  const model = modelWith(fx, [fx.reference]);
  const s = model.createSession();
  const ac = new AbortController();
  const got = [];
  try {
    for await (const p of s.generate(prompt, { ...GEN, signal: ac.signal })) {
      got.push(p.token);
      if (got.length === 5) ac.abort();
    }
    assert.unreachable();
  } catch (e) {
    assert.is(e.kind, "aborted");
  }
  assert.equal(got, want.slice(0, 5));
  await model.dispose();
});

test("two sessions interleaved token by token give what each gives alone", async () => {
  const gpu = asEngineKind(fx.reference, "webgpu");
  const cpu = asEngineKind(fx.reference, "wasm");
  const model = modelWith(fx, [cpu, gpu], { costs: HYBRID_COSTS });
  const p2 = long.tokens.slice(100, 190);
  const want2 = await referenceGreedy(p2, GEN.maxNewTokens);
  const a = model.createSession().generate(prompt, GEN)[Symbol.asyncIterator]();
  const b = model.createSession().generate(p2, GEN)[Symbol.asyncIterator]();
  const ta = [];
  const tb = [];
  for (;;) {
    const [x, y] = await Promise.all([a.next(), b.next()]);
    if (!x.done && x.value.token !== null) ta.push(x.value.token);
    if (!y.done && y.value.token !== null) tb.push(y.value.token);
    if (x.done && y.done) break;
  }
  assert.equal(ta, want);
  assert.equal(tb, want2);
  await model.dispose();
});

test("one session runs one generation at a time", async () => {
  const model = modelWith(fx, [fx.reference]);
  const s = model.createSession();
  const it = s.generate(prompt, GEN)[Symbol.asyncIterator]();
  await it.next();
  try {
    await s.snapshot();
    assert.unreachable();
  } catch (e) {
    assert.match(e.message, "busy");
  }
  await it.return();
  await s.snapshot();
  await model.dispose();
});

test("model.generate streams on a fresh session and returns the result", async () => {
  const model = modelWith(fx, [fx.reference]);
  const it = model.generate(prompt, GEN);
  const tokens = [];
  let step;
  while (!(step = await it.next()).done) tokens.push(step.value.token);
  assert.equal(tokens, want);
  assert.equal(step.value.tokens, want);
  await model.dispose();
  try {
    model.createSession();
    assert.unreachable();
  } catch (e) {
    assert.match(e.message, "disposed");
  }
});

test("token ids out of range are input errors", async () => {
  const model = modelWith(fx, [fx.reference]);
  try {
    await model.generateText([1, 256], GEN);
    assert.unreachable();
  } catch (e) {
    assert.is(e.kind, "input");
    assert.match(e.message, "256");
  }
  await model.dispose();
});

test.run();
