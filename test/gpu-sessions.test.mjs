// Sessions of one webgpu engine share its activation buffers and take turns
// holding the state buffers (engine.ts swapSessions): interleaved calls of
// several sessions must each give the PyTorch fixture's logits and state,
// as if each ran alone.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { gpuOrSkip } from "./gpu-support.mjs";
import { loadFixture, logitsError, openFixtureModel, stateError } from "./helpers/fixtures.mjs";

const { createWebGpuEngine } = await import("../dist/gpu/engine.js");
const { createReferenceEngine } = await import("../dist/reference/engine.js");
const { randomModel } = await import("./helpers/random-model.mjs");
const { prefillThenStepErrors } = await import("./helpers/prefill-then-step.mjs");
const TOL = 1e-4;

test("interleaved sessions, reset, import and export each match PyTorch", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  const fx = loadFixture("tiny-f32");
  const source = await openFixtureModel(fx);
  const engine = await createWebGpuEngine(source, { context: ctx, chunkTokens: 64 });
  try {
    const cases = fx.cases.filter((c) => c.tokens.length >= 8 && c.tokens.length <= 130).slice(0, 2);
    assert.is(cases.length, 2);
    const [a, b] = cases;
    const A = engine.createSession();
    const B = engine.createSession();
    const half = (c) => Math.floor(c.tokens.length / 2);
    // A and B alternate: each call swaps the other's state out
    const la = await A.prefill(a.tokens.slice(0, half(a)), "all");
    const lb = await B.prefill(b.tokens.slice(0, half(b)), "all");
    // C starts from A's state mid-way, on the device while A and B go on
    const C = engine.createSession();
    await C.importState(await A.exportState());
    for (let i = half(a); i < a.tokens.length; i++) {
      la.push(await A.step(a.tokens[i]));
      if (i - half(a) < b.tokens.length - half(b)) lb.push(await B.step(b.tokens[half(b) + (i - half(a))]));
    }
    lb.push(...(await B.prefill(b.tokens.slice(half(b) + (a.tokens.length - half(a))), "all")));
    const lc = await C.prefill(a.tokens.slice(half(a)), "all");
    assert.ok(logitsError(la, a.logits) <= TOL, `A logits ${logitsError(la, a.logits)}`);
    assert.ok(logitsError(lb, b.logits) <= TOL, `B logits ${logitsError(lb, b.logits)}`);
    assert.ok(logitsError(lc, a.logits.slice(half(a))) <= TOL, `C logits ${logitsError(lc, a.logits.slice(half(a)))}`);
    assert.ok(stateError(await A.exportState(), a.state) <= TOL, "A state");
    assert.ok(stateError(await B.exportState(), b.state) <= TOL, "B state");
    assert.ok(stateError(await C.exportState(), a.state) <= TOL, "C state");
    // reset of a non-resident session: B restarts from the empty state while C is resident
    B.reset();
    const again = await B.prefill(b.tokens, "last");
    assert.ok(logitsError(again, b.logits.slice(-1)) <= TOL, "B after reset");
    // a disposed resident session leaves the others intact
    B.dispose();
    const la2 = await A.prefill([], "none");
    assert.is(la2.length, 0);
    assert.ok(stateError(await A.exportState(), a.state) <= TOL, "A state after B disposed");
    A.dispose();
    C.dispose();
  } finally {
    await engine.dispose();
    await source.close();
  }
});

test("a model deeper than one submission (prefill sent in parts of layers) matches the reference", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  // 10 layers: parts of 1 + 4 + 4 + 1, the head in the last; d = 120, so that a layer's S and conv
  // state (14400 and 1440 bytes) sit at padded offsets of the one state buffer, read back 4 layers a copy
  const source = randomModel({ decoder_embed_dim: 120, decoder_layers: 10, decoder_attention_heads: 2, glu_dim: 64, vocab_size: 40 }, { seed: 11 });
  const engine = await createWebGpuEngine(source, { context: ctx, chunkTokens: 64 });
  const reference = await createReferenceEngine(source);
  try {
    const tokens = Array.from({ length: 90 }, (_, i) => (i * 13 + 5) % 40);
    const s = engine.createSession();
    const e = await prefillThenStepErrors(s, reference, tokens, 70);
    assert.ok(e.logits <= TOL, `logits ${e.logits}`);
    assert.ok(e.state <= TOL, `state ${e.state}`);
    s.dispose();
  } finally {
    await engine.dispose();
  }
});

test.run();
