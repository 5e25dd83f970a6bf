// The reference ops against values worked out by hand (or from published
// tables, cited) and against properties; no expected value here comes from
// the code under test.
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  decayKey,
  elu,
  embed,
  erf,
  gateOutput,
  gelu,
  glaStep,
  glu,
  gluActivation,
  headNorm,
  layerNorm,
  lmHead,
  logSigmoid,
  logSoftmax,
  matVec,
  nll,
  norm,
  rmsNorm,
  selfAugment,
  shortConvStep,
  sigmoid,
  silu,
} from "../dist/reference/ops.js";

const f64 = (a) => Float64Array.from(a);
const f32 = (a) => Float32Array.from(a);

function close(actual, expected, tol = 1e-14, what = "") {
  assert.ok(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)), `${what} ${actual} != ${expected}`);
}
function closeAll(actual, expected, tol = 1e-14) {
  assert.is(actual.length, expected.length, "length");
  expected.forEach((e, i) => close(actual[i], e, tol, `[${i}]`));
}

test("sigmoid and silu: exact points, symmetry, no overflow at the extremes", () => {
  assert.is(sigmoid(0), 0.5);
  close(sigmoid(1), 1 / (1 + Math.E ** -1));
  for (const x of [0.3, 2, 17, 40]) close(sigmoid(x) + sigmoid(-x), 1);
  assert.is(sigmoid(-800), 0); // e^800 overflows a naive 1/(1+e^-x); the answer underflows to 0 instead
  assert.is(sigmoid(800), 1);
  close(silu(1), 0.7310585786300049); // 1/(1+1/e)
  close(silu(-1), -0.2689414213699951); // -1/(1+e)
  assert.is(silu(-800), -0);
});

test("logSigmoid: -ln 2 at 0, exact for very negative x, tiny but nonzero for large x", () => {
  close(logSigmoid(0), -Math.LN2);
  assert.is(logSigmoid(-1000), -1000); // log(e^-1000 / (1 + e^-1000)) = -1000 - log1p(e^-1000)
  close(logSigmoid(40), -4.248354255291589e-18, 1e-12); // -log1p(e^-40) = -e^-40 to double precision
  assert.ok(logSigmoid(40) < 0);
});

test("erf matches tabulated values (Abramowitz & Stegun table 7.1) and is odd", () => {
  assert.is(erf(0), 0);
  close(erf(0.5), 0.5204998778130465, 1e-15);
  close(erf(1), 0.8427007929497149, 1e-15);
  close(erf(2), 0.9953222650189527, 1e-15);
  close(erf(3), 0.9999779095030014, 1e-15);
  close(erf(-1), -0.8427007929497149, 1e-15);
  assert.is(erf(7), 1);
  assert.is(erf(-7), -1);
});

test("gelu is x * Phi(x) with the exact normal CDF", () => {
  assert.is(gelu(0), 0);
  close(gelu(1), 0.8413447460685429, 1e-15); // Phi(1)
  close(gelu(-1), -0.15865525393145707, 1e-15); // -Phi(-1)
  close(gelu(2), 2 * 0.9772498680518208, 1e-15); // 2 Phi(2)
});

test("every glu_act of the official utils.py", () => {
  const a = (name, x) => gluActivation(name)(x);
  close(a("silu", 2), 2 / (1 + Math.exp(-2)));
  close(a("swish", 2), 2 / (1 + Math.exp(-2)));
  close(a("gelu", 1), 0.8413447460685429, 1e-15);
  assert.is(a("relu", -2), 0);
  assert.is(a("relu", 3), 3);
  close(a("elu", -1), -0.6321205588285577); // e^-1 - 1
  assert.is(a("elu", 2), 2);
  close(a("sigmoid", 0), 0.5);
  close(a("leak", -2), -0.02); // torch leaky_relu default slope 0.01
  assert.is(a("leak", 2), 2);
  close(a("1+elu", -1), 0.36787944117144233); // e^-1
  assert.is(a("1+elu", 2), 3);
  close(a("2+elu", -1), 1.3678794411714423);
  assert.is(a("2+elu", 2), 4);
  close(a("sine", Math.PI / 2), 1);
  close(elu(-1e-10), -1e-10 + 5e-21, 1e-15); // expm1 keeps the small negative branch accurate
});

test("rmsNorm: x / sqrt(mean(x^2) + 1e-6), no weight", () => {
  // mean(x^2) of [3, 4] is 12.5
  closeAll(rmsNorm(f64([3, 4])), [3 / Math.sqrt(12.500001), 4 / Math.sqrt(12.500001)]);
  closeAll(rmsNorm(f64([0, 0])), [0, 0]); // eps keeps the zero vector finite
});

test("layerNorm: biased variance, weight and bias; norm dispatches on the norm type", () => {
  // mean 2.5, variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25
  const s = Math.sqrt(1.25);
  closeAll(layerNorm(f64([1, 2, 3, 4]), f32([1, 2, 1, 1]), f32([0, 0, 1, 0]), 0), [-1.5 / s, (2 * -0.5) / s, 0.5 / s + 1, 1.5 / s]);
  closeAll(norm(f64([1, 2, 3, 4]), { type: "layernorm", weight: f32([1, 1, 1, 1]), bias: f32([0, 0, 0, 0]) }), [-1.5, -0.5, 0.5, 1.5].map((x) => x / Math.sqrt(1.25 + 1e-5)));
  closeAll(norm(f64([3, 4]), { type: "simplermsnorm" }), [3 / Math.sqrt(12.500001), 4 / Math.sqrt(12.500001)]);
});

test("matVec: W [out, in] times x, with and without bias; lmHead is the same product", () => {
  const W = f32([1, 2, 3, 4, 5, 6]); // [[1,2,3],[4,5,6]]
  closeAll(matVec(W, 2, 3, f64([1, 0, -1])), [-2, -2]);
  closeAll(matVec(W, 2, 3, f64([1, 1, 1]), f32([0.5, -1])), [6.5, 14]);
  closeAll(lmHead(W, 2, 3, f64([0, 1, 0])), [2, 5]);
});

test("embed: the token's row times the scale", () => {
  const table = f32([1, 2, 3, 4, 5, 6]); // 3 tokens, d = 2
  closeAll(embed(table, 2, 2, 1), [5, 6]);
  closeAll(embed(table, 2, 1, Math.sqrt(2)), [3 * Math.SQRT2, 4 * Math.SQRT2]);
});

test("shortConvStep: causal kernel-4 conv + SiLU, state shifts oldest first", () => {
  // d = 2; channel 0 weights [1, 2, 3, 4] (w[0] on the oldest input), channel 1 weights [0, 0, 0, -1]
  const w = f32([1, 2, 3, 4, 0, 0, 0, -1]);
  const state = new Float64Array(6);
  // token 1: only x_t is nonzero: channel 0 = 4 * 1, channel 1 = -1 * 10
  closeAll(shortConvStep(state, f64([1, 10]), w), [silu(4), silu(-10)]);
  closeAll(state, [0, 0, 0, 0, 1, 10]);
  // token 2: 3 * 1 + 4 * 2
  closeAll(shortConvStep(state, f64([2, 20]), w), [silu(11), silu(-20)]);
  shortConvStep(state, f64([3, 30]), w);
  // token 4: 1*1 + 2*2 + 3*3 + 4*4 = 30; the first input is still in the window
  closeAll(shortConvStep(state, f64([4, 40]), w), [silu(30), silu(-40)]);
  // token 5: 1*2 + 2*3 + 3*4 + 4*5 = 40; token 1 has left the window
  closeAll(shortConvStep(state, f64([5, 50]), w), [silu(40), silu(-50)]);
  closeAll(state, [3, 30, 4, 40, 5, 50]);
});

test("decayKey: gk = logsigmoid(a)/16, alpha = exp(gk), k = 1 - alpha, accurate at both ends", () => {
  const { gk, alpha, k } = decayKey(f64([0, -480, 40]));
  // a = 0: sigmoid = 1/2, gk = -ln2/16, alpha = 2^(-1/16)
  close(gk[0], -Math.LN2 / 16);
  close(alpha[0], 2 ** (-1 / 16));
  close(k[0], 1 - 2 ** (-1 / 16), 1e-13);
  // a = -480: logsigmoid(-480) = -480 in double precision, so gk = -30 exactly
  assert.is(gk[1], -30);
  close(alpha[1], 9.357622968840175e-14, 1e-14); // e^-30
  close(k[1], 1 - 9.357622968840175e-14);
  // a = 40: gk = -e^-40/16 = -2.655e-19. 1 - exp(gk) rounds to exactly 0 in
  // double; -expm1(gk) keeps it to full precision.
  close(gk[2], -4.248354255291589e-18 / 16, 1e-12);
  assert.is(1 - Math.exp(gk[2]), 0);
  close(k[2], 4.248354255291589e-18 / 16, 1e-12);
  assert.ok(k.every((x, i) => Math.abs(x + alpha[i] - 1) < 1e-15), "k + alpha = 1");
});

test("glaStep: update first, then read out with scale K^-0.5 (hand-computed, H=2, K=4, V=1)", () => {
  const shape = { H: 2, K: 4, V: 1 };
  const S = new Float64Array([1, 2, 3, 4, 0, 0, 0, 0]);
  const alpha = f64([0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1]);
  const k = f64([1, 0, 0, 0, 0, 0, 0, 1]);
  const q = f64([1, 1, 1, 1, 2, 0, 0, 2]);
  const v = f64([10, 3]);
  const o = glaStep(S, q, k, alpha, v, shape);
  // head 0: S = 0.5*[1,2,3,4] + [1,0,0,0]^T*10 = [10.5, 1, 1.5, 2]; o = 0.5 * sum = 7.5
  // head 1: S = [0,0,0,3];                                                o = 0.5 * 2 * 3 = 3
  closeAll(S, [10.5, 1, 1.5, 2, 0, 0, 0, 3]);
  closeAll(o, [7.5, 3]);
});

test("glaStep with a Float32Array state rounds each entry as it is stored, and reads the rounded value", () => {
  const S = new Float32Array(1);
  const o = glaStep(S, f64([1]), f64([1]), f64([1]), f64([0.1]), { H: 1, K: 1, V: 1 });
  assert.is(S[0], Math.fround(0.1));
  assert.is(o[0], Math.fround(0.1));
});

test("selfAugment: o + sigmoid((q . (k * w)) * v) per head, q unscaled", () => {
  const shape = { H: 2, K: 2, V: 2 };
  const o = f64([0, 1, 2, 3]);
  const q = f64([1, 2, 0, 0]);
  const k = f64([3, 4, 1, 1]);
  const w = f32([1, 0.5, 1, 1]);
  const v = f64([0.25, -1, 5, 6]);
  // head 0: q.(k*w) = 1*3 + 2*2 = 7; head 1: 0
  closeAll(selfAugment(o, q, k, w, v, shape), [sigmoid(1.75), 1 + sigmoid(-7), 2.5, 3.5]);
});

test("headNorm: per-head zero mean, unit variance (eps 1e-5), no affine", () => {
  const out = headNorm(f64([1, 3, 10, 10, 0, 4]), 3, 2);
  // head 0: mean 2, var 1; head 1: constant -> 0; head 2: mean 2, var 4
  closeAll(out, [-1 / Math.sqrt(1 + 1e-5), 1 / Math.sqrt(1 + 1e-5), 0, 0, -2 / Math.sqrt(4 + 1e-5), 2 / Math.sqrt(4 + 1e-5)]);
});

test("gateOutput: silu(g) * o", () => {
  closeAll(gateOutput(f64([0, 1, -1]), f64([5, 2, 3])), [0, 2 * 0.7310585786300049, 3 * -0.2689414213699951]);
});

test("glu: l3(act(l1 x) * l2 x) with biases", () => {
  // d = 2, gluDim = 2, act relu
  const w = {
    l1: f32([1, 0, 0, -1]),
    l2: f32([2, 0, 0, 3]),
    l3: f32([1, 1, 0, 1]),
    l1Bias: f32([0, 1]),
    l2Bias: f32([0, 0]),
    l3Bias: f32([0, 100]),
  };
  // x = [2, 3]: l1 x = [2, -3 + 1 = -2] -> relu [2, 0]; l2 x = [4, 9]; h = [8, 0]; l3 h = [8, 0] + [0, 100]
  closeAll(glu(f64([2, 3]), w, 2, gluActivation("relu")), [8, 100]);
});

test("logSoftmax and nll: exact probabilities, no overflow for large logits", () => {
  closeAll(logSoftmax([0, Math.log(3)]), [Math.log(0.25), Math.log(0.75)]);
  closeAll(logSoftmax([1000, 1000]), [-Math.LN2, -Math.LN2]);
  // uniform logits over 4 tokens: every prediction costs ln 4; T = 3 -> 2 predictions
  close(nll([[0, 0, 0, 0], [5, 5, 5, 5], [1, 2, 3, 4]], [0, 1, 2]), Math.log(4));
  // logits[0] predicts tokens[1] = 1 with probability 3/4
  close(nll([[0, Math.log(3)], [0, 0]], [0, 1]), -Math.log(0.75));
  assert.is(nll([[0, 0]], [1]), null);
});

test.run();
