// rmsConvStep (assembly/ops.ts): the one-token conv step with the RMS norm
// before it fused in, against the reference ops (src/reference/ops.ts,
// float64): the conv of rmsNorm(x), the state advanced by the normalized
// input, and its quantized output the same bytes as quantizeInput's.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { FMT } from "../dist/cpu/kernels.js";
import { inputBytes } from "../dist/cpu/layout.js";
import * as ref from "../dist/reference/ops.js";
import { seededRandom, uniform } from "./helpers/random-model.mjs";
import { kernelHarness } from "./helpers/wasm-kernels.mjs";

const { k, build, buf, alloc, put, get } = await kernelHarness(64);
const rand = seededRandom(4242);

test("rmsConvStep over tiles split at 32 and 64 = reference shortConvStep of rmsNorm(x), state advanced; quantizing (q != 0) = quantizeInput of its output, byte for byte", () => {
  const d = 96;
  const w = uniform(rand, 4 * d, 0.5);
  const state0 = uniform(rand, 3 * d, 1);
  const x = Float64Array.from(uniform(rand, d, 3));
  const sp = put(state0), wp = put(w), xp = put(x), op = alloc(4 * d);
  k.rmsConvStep(sp, xp, wp, op, d, 0, 0, 0, 32, 0);
  k.rmsConvStep(sp, xp, wp, op, d, 0, 0, 32, 64, 1);
  k.rmsConvStep(sp, xp, wp, op, d, 0, 0, 64, d, 0);
  const refState = Float64Array.from(state0);
  const expected = ref.shortConvStep(refState, ref.rmsNorm(x), w);
  const out = get(op, d);
  for (let i = 0; i < d; i++) assert.ok(Math.abs(out[i] - expected[i]) <= 1e-5 * Math.max(1, Math.abs(expected[i])), `out[${i}]: ${out[i]} vs ${expected[i]}`);
  const state = get(sp, 3 * d);
  for (let i = 0; i < 3 * d; i++) assert.ok(Math.abs(state[i] - refState[i]) <= 1e-5 * Math.max(1, Math.abs(refState[i])), `state[${i}]: ${state[i]} vs ${refState[i]}`);
  for (const dtype of ["q8", "q4"]) {
    const q = alloc(inputBytes(d)), want = alloc(inputBytes(d));
    const sp2 = put(state0);
    k.rmsConvStep(sp2, xp, wp, op, d, FMT[dtype], q, 0, 32, 0);
    k.rmsConvStep(sp2, xp, wp, op, d, FMT[dtype], q, 32, d, 1);
    k.quantizeInput(FMT[dtype], op, want, d);
    // what quantizeInput writes: 2 bytes an input (Q4 in the relaxed build: 1), a scale a block, for Q8 and relaxed Q4 also a correction term
    const i8 = dtype === "q4" && build === "relaxed-simd";
    const bytesOf = (p) => Array.from(new Uint8Array(buf, p, i8 ? d : 2 * d)).concat(Array.from(new Uint8Array(buf, p + 2 * d, (d / 32) * (dtype === "q8" || i8 ? 8 : 4))));
    assert.equal(bytesOf(q), bytesOf(want), `${dtype} quantization`);
  }
});

test.run();
