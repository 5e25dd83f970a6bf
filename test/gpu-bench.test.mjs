// The GPU benchmark's accounting (src/gpu/bench.ts), on SwiftShader with a
// tiny fixture model: every prefill row carries the dispatches a forward
// pass records and what they cost at the measured per-dispatch floor, and
// the best and median call's rate; the multiply-add peak probe does the
// work it is timed for.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { gpuOrSkip } from "./gpu-support.mjs";
import { loadFixture, openFixtureModel } from "./helpers/fixtures.mjs";

const { createWebGpuEngine } = await import("../dist/gpu/engine.js");
const { benchWebGpuPrefill, runFmaPeak } = await import("../dist/gpu/bench.js");

test("prefill rows: dispatches per forward pass (embed, 11 per layer, final norm, head) and their floor", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  const source = await openFixtureModel(loadFixture("tiny-f32"));
  const L = source.config.numLayers;
  const engine = await createWebGpuEngine(source, { context: ctx, chunkTokens: 128 });
  try {
    // 70 tokens: one call; 200: two chunks of the engine's 128, the head only after the last
    const r = await benchWebGpuPrefill(engine, [70, 200], 1, 2);
    const [short, long] = r.prefill;
    // per layer: token norm, conv, q/k/v/g, decay-key, chunk-state, scan, output, out, channel norm, GLU, down;
    // the last on the last row alone: the same less the channel norm, plus the row's move
    assert.is(short.dispatches, 1 + 11 * L + 2);
    // a chunk without logits stops after its last token mixer (4 dispatches fewer)
    assert.is(long.dispatches, 1 + 11 * L - 4 + (1 + 11 * L + 2));
    for (const row of r.prefill) {
      assert.ok(row.dispatchFloorMs > 0 && Number.isFinite(row.dispatchFloorMs), String(row.dispatchFloorMs));
      // the best of the calls, and their median: never faster than the best
      assert.ok(row.medianTokensPerS > 0 && row.medianTokensPerS <= row.tokensPerS, `${row.medianTokensPerS} vs ${row.tokensPerS}`);
      assert.ok(Math.abs(row.dispatchFloorMs / row.dispatches - short.dispatchFloorMs / short.dispatches) < 1e-12, "one floor per run");
    }
  } finally {
    await engine.dispose();
  }
});

test("the multiply-add peak probe does every step it is timed for (8 vec4 chains of ITER steps a thread)", async () => {
  const ctx = await gpuOrSkip();
  if (!ctx) return;
  const r = await runFmaPeak(ctx, 3, 37, 1);
  assert.is(r.macs, 3 * 256 * 37 * 32);
  assert.is(r.sums.length, 3 * 256);
  // m = c = 1: chain j ends at j + ITER in each of its 4 lanes
  for (const s of r.sums) assert.is(s, 4 * (0 + 1 + 2 + 3 + 4 + 5 + 6 + 7) + 32 * 37);
  assert.ok(r.seconds > 0 && Number.isFinite(r.seconds), String(r.seconds));
});

test.run();
