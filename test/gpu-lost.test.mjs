// Device loss and oversized tensors: a lost device leaves the caller the
// state after the last completed chunk and the tokens to replay; an
// embedding larger than one storage binding is split and still exact.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { gpuOrSkip } from "./gpu-support.mjs";
import { loadFixture, logitsError, openFixtureModel, stateError } from "./helpers/fixtures.mjs";

const { createWebGpuEngine } = await import("../dist/gpu/engine.js");
const { openDevice } = await import("../dist/gpu/device.js");
const { GpuLostError } = await import("../dist/gpu/lost.js");

/** Awaits fn, which must fail with a GpuLostError; returns it. */
async function lostError(fn) {
  let err;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof GpuLostError, `expected GpuLostError, got ${err}`);
  return err;
}

/** An engine on a device of its own (the test destroys it), a session, and the fixture's 65-token case. */
async function ownDevice(fixture) {
  const fx = loadFixture(fixture);
  const source = await openFixtureModel(fx);
  const ctx = await openDevice();
  const engine = await createWebGpuEngine(source, { context: ctx });
  return { source, ctx, engine, s: engine.createSession(), c: fx.cases.find((x) => x.tokens.length === 65) };
}

test("device lost: GpuLostError (kind device) with the last read-back state and the tokens to replay", async () => {
  if (!(await gpuOrSkip())) return;
  const { source, ctx, engine, s, c } = await ownDevice("tiny-f32");
  await s.prefill(c.tokens.slice(0, 60), "none");
  const saved = await s.exportState();
  assert.is(saved.position, 60);
  await s.step(c.tokens[60]);
  await s.step(c.tokens[61]);
  ctx.device.destroy();
  const err = await lostError(() => s.step(c.tokens[62]));
  assert.is(err.kind, "device");
  assert.is(err.state.position, 60);
  assert.equal(err.replay, c.tokens.slice(60, 62));
  assert.ok(stateError(err.state, { position: 60, layers: saved.layers }) === 0, "the carried state is the one read back after the prefill");
  // the engine stays marked: new sessions fail fast with a one-line device error
  assert.throws(() => engine.createSession(), (e) => e.kind === "device");
  await source.close();
});

test("device lost between the parts of a prefill: the state of the call before, not a mix of old and new layers", async () => {
  if (!(await gpuOrSkip())) return;
  const { source, ctx, s, c } = await ownDevice("layernorm-gelu");
  await s.prefill(c.tokens.slice(0, 40), "none");
  const saved = await s.exportState();
  // the device goes away after the prefill's first part was submitted, before its second (2 layers: 3
  // parts, the first layer's mixer input, its rest, then the last layer)
  const queue = ctx.device.queue;
  const submit = queue.submit.bind(queue);
  let submits = 0;
  queue.submit = (buffers) => {
    if (++submits === 2) ctx.device.destroy();
    else submit(buffers);
  };
  const err = await lostError(() => s.prefill(c.tokens.slice(40), "last"));
  assert.is(submits, 4, "the prefill went in three parts, then its state read-back");
  assert.is(err.state.position, 40);
  assert.equal(err.replay, []);
  assert.ok(stateError(err.state, saved) === 0, "every layer's state is the one before the failed prefill");
  await source.close();
});

test("device lost while a prefill's state is on its way back: the state before it, its tokens to replay", async () => {
  if (!(await gpuOrSkip())) return;
  const { source, ctx, s, c } = await ownDevice("tiny-f32");
  // the engine's state read-back buffers map only once `held` lets them (while one is set)
  let held = null;
  const create = ctx.device.createBuffer.bind(ctx.device);
  ctx.device.createBuffer = (desc) => {
    const b = create(desc);
    if (desc.label?.startsWith("state read-back")) {
      const map = b.mapAsync.bind(b);
      b.mapAsync = (...args) => (held ?? Promise.resolve()).then(() => map(...args));
    }
    return b;
  };
  await s.prefill(c.tokens.slice(0, 40), "none");
  const saved = await s.exportState();
  let release;
  held = new Promise((r) => (release = r));
  const logits = await s.prefill(c.tokens.slice(40, 60), "last");
  assert.is(logits.length, 1, "the logits came back while the state was held");
  ctx.device.destroy();
  release();
  const err = await lostError(() => s.step(c.tokens[60]));
  assert.is(err.state.position, 40);
  assert.equal(err.replay, c.tokens.slice(40, 60), "the prefill whose state never landed is to replay, the failed step is not");
  assert.ok(stateError(err.state, saved) === 0, "the state is the one read back before that prefill");
  await source.close();
});

test("embedding split over several storage bindings: logits unchanged", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  const fx = loadFixture("bf16-untied");
  const source = await openFixtureModel(fx);
  const d = source.config.hiddenSize;
  // 7 rows of the table per binding: the embedding and head come in many parts
  const engine = await createWebGpuEngine(source, { context: ctx, maxBindingBytes: 7 * d * 4 });
  const c = fx.cases.find((x) => x.tokens.length === 63);
  const s = engine.createSession();
  const logits = await s.prefill(c.tokens, "all");
  const e = logitsError(logits, c.logits);
  assert.ok(e <= 1e-4, `logits rel error ${e}`);
  await engine.dispose();
  await source.close();
});

test.run();
