// Session snapshots: round trip, fork, and refusal of corrupt, truncated and
// foreign snapshots, on the tiny-f32 fixture with the reference engine. The
// expected states come from the PyTorch fixture, not from the code under test.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadFixture, stateError } from "./helpers/fixtures.mjs";
import { modelWith, openFixture } from "./helpers/runtime-model.mjs";
import { readSnapshotHeader } from "../dist/runtime/snapshot.js";
import { modelFingerprint } from "../dist/runtime/fingerprint.js";
import { createReferenceEngine } from "../dist/reference/engine.js";
import { randomModel } from "./helpers/random-model.mjs";

const fx = await openFixture("tiny-f32");
const other = await openFixture("strong-decay");
const expected = loadFixture("tiny-f32");
const case300 = expected.cases.find((c) => c.tokens.length === 300);
const case130 = expected.cases.find((c) => c.tokens.length === 130);

function expectFormatError(f, pattern) {
  try {
    f();
    assert.unreachable("accepted");
  } catch (e) {
    assert.is(e.name, "MetalaError", String(e));
    assert.is(e.kind, "format");
    assert.match(e.message, pattern);
  }
}

test("snapshot holds the state: header, size, and the PyTorch state after the prompt", async () => {
  const model = modelWith(fx, [fx.reference]);
  const s = model.createSession();
  await s.feed(case130.tokens);
  const bytes = await s.snapshot();
  const c = fx.source.config;
  const stateBytes = c.numLayers * 4 * (c.numHeads * c.headKeyDim * c.headValueDim + 3 * c.hiddenSize);
  assert.is(bytes.length, 56 + stateBytes + 4);
  const h = readSnapshotHeader(bytes);
  assert.is(h.position, 130);
  assert.is(h.fingerprint, fx.fingerprint);
  // bytes at an odd offset of a larger buffer (as read from a file or a network message)
  const shifted = new Uint8Array(bytes.length + 3);
  shifted.set(bytes, 1);
  const restored = model.restoreSession(shifted.subarray(1, 1 + bytes.length));
  const state = await restored.exportState();
  assert.ok(stateError(state, case130.state) < 1e-5, `state error ${stateError(state, case130.state)}`);
  await model.dispose();
});

test("restore then continue gives the same greedy tokens as never stopping", async () => {
  const model = modelWith(fx, [fx.reference]);
  const prompt = case300.tokens.slice(0, 50);
  const straight = await model.generateText(prompt, { maxNewTokens: 12, ignoreEos: true });
  const s = model.createSession();
  await s.feed(prompt.slice(0, 30));
  const snap = await s.snapshot();
  s.dispose();
  const resumed = model.restoreSession(snap);
  assert.is(resumed.position, 30);
  const r = await resumed.generate(prompt.slice(30), { maxNewTokens: 12, ignoreEos: true }).complete();
  assert.equal(r.tokens, straight.tokens);
  await model.dispose();
});

test("fork: two sessions from one snapshot continue independently and alike", async () => {
  const model = modelWith(fx, [fx.reference]);
  const s = model.createSession();
  await s.feed(case300.tokens.slice(0, 40));
  const a = await s.fork();
  const b = await s.fork();
  const ra = await a.generate([7], { maxNewTokens: 8, ignoreEos: true }).complete();
  const rb = await b.generate([7], { maxNewTokens: 8, ignoreEos: true }).complete();
  const rc = await b.generate([9], { maxNewTokens: 4, ignoreEos: true }).complete(); // b moves on; a is untouched
  assert.equal(ra.tokens, rb.tokens);
  const ra2 = await s.generate([7], { maxNewTokens: 8, ignoreEos: true }).complete();
  assert.equal(ra2.tokens, ra.tokens, "the original continues like its forks");
  assert.is(b.position, 40 + 1 + 8 + 1 + 3);
  assert.ok(rc.tokens.length === 4);
  await model.dispose();
});

test("a snapshot after generation includes the last generated token", async () => {
  const model = modelWith(fx, [fx.reference]);
  const s = model.createSession();
  const r = await s.generate(case300.tokens.slice(0, 20), { maxNewTokens: 5, ignoreEos: true }).complete();
  const snap = await s.snapshot();
  assert.is(readSnapshotHeader(snap).position, 25);
  // the same state by feeding prompt + generated tokens
  const t = model.createSession();
  await t.feed([...case300.tokens.slice(0, 20), ...r.tokens]);
  const e1 = await model.restoreSession(snap).exportState();
  const e2 = await t.exportState();
  assert.ok(stateError(e1, e2) < 1e-5, `${stateError(e1, e2)}`);
  await model.dispose();
});

test("refused: corrupt byte, truncated, extra bytes, bad magic, other version, another model", async () => {
  const model = modelWith(fx, [fx.reference]);
  const s = model.createSession();
  await s.feed([5, 9, 13]);
  const good = await s.snapshot();

  for (const at of [20, 100, good.length - 10, good.length - 1]) {
    const bad = good.slice();
    bad[at] ^= 0x10;
    expectFormatError(() => model.restoreSession(bad), at < 28 ? /another model|checksum/ : /checksum/);
  }
  expectFormatError(() => model.restoreSession(good.slice(0, good.length - 1)), /truncated/);
  expectFormatError(() => model.restoreSession(good.slice(0, 1000)), /truncated/);
  expectFormatError(() => model.restoreSession(good.slice(0, 10)), /bad magic/);
  const longer = new Uint8Array(good.length + 4);
  longer.set(good);
  expectFormatError(() => model.restoreSession(longer), /unexpected bytes/);
  const magic = good.slice();
  magic[0] = 0x58;
  expectFormatError(() => model.restoreSession(magic), /bad magic/);
  const version = good.slice();
  new DataView(version.buffer).setUint32(8, 2, true);
  expectFormatError(() => model.restoreSession(version), /version 2/);

  const otherModel = modelWith(other, [other.reference]);
  const os = otherModel.createSession();
  await os.feed([5, 9, 13]);
  const foreign = await os.snapshot();
  expectFormatError(() => model.restoreSession(foreign), /another model/);
  expectFormatError(() => otherModel.restoreSession(good), /another model/);
  // a failed restore leaves the session as it was
  const before = s.position;
  expectFormatError(() => s.restore(foreign), /another model/);
  assert.is(s.position, before);
  await model.dispose();
  await otherModel.dispose();
});

test("same architecture, other weights: the fingerprint tells them apart, and the snapshot is refused", async () => {
  const config = { decoder_embed_dim: 32, decoder_layers: 2, decoder_attention_heads: 2, glu_dim: 48, vocab_size: 64 };
  const a = randomModel(config, { seed: 1 });
  const b = randomModel(config, { seed: 2 });
  const fa = await modelFingerprint(a);
  assert.is.not(fa, await modelFingerprint(b));
  assert.is(fa, await modelFingerprint(randomModel(config, { seed: 1 })), "deterministic");
  const ma = modelWith({ source: a, fingerprint: fa }, [await createReferenceEngine(a)]);
  const mb = modelWith({ source: b, fingerprint: await modelFingerprint(b) }, [await createReferenceEngine(b)]);
  const s = ma.createSession();
  await s.feed([1, 2, 3]);
  const snap = await s.snapshot();
  expectFormatError(() => mb.restoreSession(snap), /another model \(fingerprint/);
  await ma.dispose();
  await mb.dispose();
});

test.run();
