// The two GLA forms of the reference (token-by-token, and the chunked
// blueprint of the GPU prefill) against a third, written here: the direct
// quadratic formula of spec §4 over the whole sequence,
//   o_t = s q_t ( diag(exp(B_t)) S0 + sum_{u<=t} diag(exp(B_t - B_u)) k_u^T v_u ),
// with B_t the cumulative log decay from the sequence start (every exponent
// <= 0, so it is exact in f64 even for the strongest decays).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { glaChunked } from "../dist/reference/gla-chunked.js";
import { glaRecurrent } from "../dist/reference/gla.js";
import { seededRandom } from "./helpers/random-model.mjs";

function quadraticGla(seq, S0, { H, K, V }) {
  const T = seq.q.length;
  const s = 1 / Math.sqrt(K);
  const B = [];
  const running = new Float64Array(H * K);
  for (let t = 0; t < T; t++) {
    seq.gk[t].forEach((g, i) => (running[i] += g));
    B.push(running.slice());
  }
  const o = [];
  const S = new Float64Array(H * K * V);
  for (let t = 0; t < T; t++) {
    const ot = new Float64Array(H * V);
    for (let h = 0; h < H; h++)
      for (let i = 0; i < K; i++) {
        const hi = h * K + i;
        for (let j = 0; j < V; j++) {
          let state = Math.exp(B[t][hi]) * S0[hi * V + j];
          for (let u = 0; u <= t; u++) state += Math.exp(B[t][hi] - B[u][hi]) * seq.k[u][hi] * seq.v[u][h * V + j];
          ot[h * V + j] += s * seq.q[t][hi] * state;
          if (t === T - 1) S[hi * V + j] = state;
        }
      }
    o.push(ot);
  }
  return { o, S };
}

/** Random q, v, S0 in [-1, 1); gk = decay(uniform [0, 1)); k = 1 - exp(gk) as MetaLA ties it. */
function randomSequence(T, { H, K, V }, decay, seed) {
  const rand = seededRandom(seed);
  const vec = (n, f) => Float64Array.from({ length: n }, f);
  const seq = { q: [], k: [], gk: [], v: [] };
  for (let t = 0; t < T; t++) {
    const gk = vec(H * K, () => decay(rand()));
    seq.q.push(vec(H * K, () => 2 * rand() - 1));
    seq.gk.push(gk);
    seq.k.push(gk.map((g) => -Math.expm1(g)));
    seq.v.push(vec(H * V, () => 2 * rand() - 1));
  }
  const S0 = Float32Array.from({ length: H * K * V }, () => 2 * rand() - 1);
  return { seq, S0 };
}

const logSigmoid = (x) => Math.min(x, 0) - Math.log1p(Math.exp(-Math.abs(x)));
const DECAYS = {
  weak: (r) => -0.05 * r - 1e-9, // alpha near 1: long memory
  typical: (r) => logSigmoid(16 * r - 8) / 16, // k_gate outputs in [-8, 8)
  strong: (r) => -1 - 29 * r, // gk down to -30: alpha down to 9e-14
  mixed: (r) => (r < 0.5 ? -30 * r : -1e-6 * r), // per key dim, some dims forget at once, others never
};

function relErr(actual, expected) {
  let err = 0;
  let ref = 0;
  for (let i = 0; i < expected.length; i++) {
    err = Math.max(err, Math.abs(actual[i] - expected[i]));
    ref = Math.max(ref, Math.abs(expected[i]));
  }
  return Number.isNaN(err) ? Infinity : err / ref;
}
const worstRow = (rows, expected) => rows.reduce((w, r, t) => Math.max(w, relErr(r, expected[t])), 0);

const SHAPE = { H: 2, K: 8, V: 16 };
const LENGTHS = [1, 15, 16, 17, 63, 64, 65, 130, 200];

for (const [name, decay] of Object.entries(DECAYS))
  test(`recurrent and chunked GLA equal the quadratic formula, ${name} decay, T = ${LENGTHS.join(", ")}`, () => {
    for (const T of LENGTHS) {
      const { seq, S0 } = randomSequence(T, SHAPE, decay, 1000 + T);
      const want = quadraticGla(seq, S0, SHAPE);
      const wantS = Float32Array.from(want.S);

      const Srec = S0.slice();
      const oRec = glaRecurrent(seq, Srec, SHAPE);
      // f64 throughout, state rounded to f32 once at the end: equal to rounding
      assert.ok(worstRow(oRec, want.o) < 1e-12, `recurrent o, T=${T}: ${worstRow(oRec, want.o)}`);
      assert.ok(relErr(Srec, wantS) < 1e-7, `recurrent S, T=${T}`);

      const Sch = S0.slice();
      const oCh = glaChunked(seq, Sch, SHAPE);
      // the state is rounded to f32 between 64-token chunks (as on the GPU): ~1e-7
      assert.ok(oCh.every((r) => r.every(Number.isFinite)), `chunked o finite, T=${T}`);
      assert.ok(worstRow(oCh, want.o) < 1e-6, `chunked o, T=${T}: ${worstRow(oCh, want.o)}`);
      assert.ok(relErr(Sch, wantS) < 1e-6, `chunked S, T=${T}: ${relErr(Sch, wantS)}`);
      if (T <= 64) assert.ok(worstRow(oCh, want.o) < 1e-12, `one chunk is all f64, T=${T}`);
    }
  });

test("strong decay: the naive whole-chunk factorisation overflows, the sub-chunked one does not", () => {
  // gk = -30 on every key dim: the cumulative log decay over a 64-token chunk
  // reaches b = -1920. The naive factorisation A[t,u] = (q_t exp(b_t)) . (k_u exp(-b_u))
  // needs exp(-b_u) = exp(1920) = Infinity, and exp(b_t) = exp(-1920) = 0,
  // so even the diagonal entry A[63][63] (true value s q.k) becomes 0 * Infinity = NaN.
  const T = 64;
  const shape = { H: 1, K: 4, V: 4 };
  const { seq, S0 } = randomSequence(T, shape, () => -30, 7);
  const b63 = -30 * 64;
  assert.is(Math.exp(-b63), Infinity);
  assert.is(Math.exp(b63), 0);
  let naive = 0;
  for (let i = 0; i < shape.K; i++) naive += seq.q[63][i] * Math.exp(b63) * (seq.k[63][i] * Math.exp(-b63));
  assert.ok(Number.isNaN(naive), "the naive factorisation yields NaN");

  const o = glaChunked(seq, S0.slice(), shape);
  const want = quadraticGla(seq, S0, shape);
  assert.ok(o.every((r) => r.every(Number.isFinite)));
  assert.ok(worstRow(o, want.o) < 1e-12, `${worstRow(o, want.o)}`);
});

test("chunked GLA leaves the final state in S and starts from the given state", () => {
  // two calls of 70 and 60 tokens from the state between them = one call of 130
  const { seq, S0 } = randomSequence(130, SHAPE, DECAYS.typical, 99);
  const part = (a, b) => ({ q: seq.q.slice(a, b), k: seq.k.slice(a, b), gk: seq.gk.slice(a, b), v: seq.v.slice(a, b) });
  const whole = S0.slice();
  const oWhole = glaChunked(seq, whole, SHAPE);
  const split = S0.slice();
  const oSplit = [...glaChunked(part(0, 70), split, SHAPE), ...glaChunked(part(70, 130), split, SHAPE)];
  assert.ok(relErr(split, whole) < 1e-6);
  assert.ok(worstRow(oSplit, oWhole) < 1e-6);
});

test.run();
