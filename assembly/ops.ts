// The per-token vector ops of a MetaLA layer (spec metala-model.md §2), with
// the names of src/reference/ops.ts. They are O(d) or O(d^2 / H) per token,
// small next to the matrix products of a decode step, but a fifth of a
// prefill once the products run at full speed: so the hot ones (the conv, the
// GLA step, self-augmentation, head norm, gate, SiLU GLU) run on f32x4 with
// the polynomial exp of simd.ts; the rest favour clarity and f64 math.
//
// Chunk convention: ops that take T process T tokens whose rows lie `ld`
// floats apart (the fused projection output has q | a | v | g per token).


import { dequantizeRows, matVecF16, matVecF32, matVecQ4, matVecQ8, quantizeBlocks } from "./matvec";
import { FMT_F16, FMT_F32, FMT_Q8 } from "./formats";
import { exp4, expm1Neg4, hsum, log1p4, madd, sigmoid4, silu4 } from "./simd";

// @ts-ignore: decorator
@inline function f(p: usize, i: i32): f32 {
  return load<f32>(p + (<usize>i << 2));
}
// @ts-ignore: decorator
@inline function put(p: usize, i: i32, v: f64): void {
  store<f32>(p + (<usize>i << 2), <f32>v);
}

// The transcendentals run in f32 (musl's expf and friends): twice as fast
// as f64 and far inside the 1e-4 logit tolerance, and the element-wise ops
// are a tenth of a quantized decode step.
// @ts-ignore: decorator
@inline function exp(x: f64): f64 {
  return <f64>Mathf.exp(<f32>x);
}

function sigmoid(x: f64): f64 {
  if (x >= 0) return 1 / (1 + exp(-x));
  const e = exp(x);
  return e / (1 + e);
}

function silu(x: f64): f64 {
  return x * sigmoid(x);
}

// Abramowitz & Stegun 7.1.26: |error| <= 1.5e-7, far below f32 activations' own rounding at 1e-4 logit tolerance.
function erf(x: f64): f64 {
  const ax = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * ax);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-ax * ax);
  return x < 0 ? -y : y;
}

function elu(x: f64): f64 {
  return x > 0 ? x : <f64>Mathf.expm1(<f32>x);
}

// glu_act codes; src/cpu/layer-plan.ts maps the config names to these.
export const ACT_SILU: i32 = 0;
export const ACT_GELU: i32 = 1;
export const ACT_RELU: i32 = 2;
export const ACT_ELU: i32 = 3;
export const ACT_SIGMOID: i32 = 4;
export const ACT_LEAK: i32 = 5;
export const ACT_ELU1: i32 = 6;
export const ACT_ELU2: i32 = 7;
export const ACT_SINE: i32 = 8;

function activation(act: i32, x: f64): f64 {
  switch (act) {
    case ACT_SILU: return silu(x);
    case ACT_GELU: return 0.5 * x * (1 + erf(x * 0.7071067811865476));
    case ACT_RELU: return x > 0 ? x : 0;
    case ACT_ELU: return elu(x);
    case ACT_SIGMOID: return sigmoid(x);
    case ACT_LEAK: return x >= 0 ? x : 0.01 * x;
    case ACT_ELU1: return 1 + elu(x);
    case ACT_ELU2: return 2 + elu(x);
    default: return Math.sin(x);
  }
}

// 1 / sqrt(mean(x^2) + 1e-6) of one row of n floats: rmsNorm's factor, and
// what a one-token kernel that applies the RMS norm before it to its own
// share of the row computes from the whole row itself (a fraction of a
// microsecond), so that none of the job's threads waits for another. Four
// accumulators: one would chain every add through its latency.
function rmsInv(x: usize, n: i32): f32 {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const p = x + (<usize>i << 2);
    const v0 = v128.load(p), v1 = v128.load(p, 16), v2 = v128.load(p, 32), v3 = v128.load(p, 48);
    a0 = madd(v0, v0, a0);
    a1 = madd(v1, v1, a1);
    a2 = madd(v2, v2, a2);
    a3 = madd(v3, v3, a3);
  }
  for (; i + 4 <= n; i += 4) { const v = v128.load(x + (<usize>i << 2)); a0 = madd(v, v, a0); }
  let ss = <f64>hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  for (; i < n; i++) { const v = <f64>f(x, i); ss += v * v; }
  return <f32>(1 / Math.sqrt(ss / n + 1e-6));
}

/** y = x / sqrt(mean(x^2) + 1e-6) for T rows of n (x and y may alias). */
export function rmsNorm(x: usize, y: usize, n: i32, T: i32): void {
  for (let t = 0; t < T; t++) {
    const xr = x + (<usize>(t * n) << 2);
    const yr = y + (<usize>(t * n) << 2);
    const inv = rmsInv(xr, n);
    const iv = f32x4.splat(inv);
    let j = 0;
    for (; j + 4 <= n; j += 4) v128.store(yr + (<usize>j << 2), f32x4.mul(v128.load(xr + (<usize>j << 2)), iv));
    for (; j < n; j++) store<f32>(yr + (<usize>j << 2), f(xr, j) * inv);
  }
}

/**
 * rmsNorm of one row of n for features [r0, r1) (multiples of 4): each
 * thread of a parallel job takes the factor from the whole row itself, so
 * the norm before a product is a job of the step's list rather than work on
 * one thread while the others wait. With q != 0 (r0 and r1 multiples of 32)
 * the features written are also quantized for a product of format qfmt into
 * q (quantizeBlocks).
 */
export function rmsNormRows(x: usize, y: usize, n: i32, qfmt: i32, q: usize, r0: i32, r1: i32, tid: i32): void {
  const inv = rmsInv(x, n);
  const iv = f32x4.splat(inv);
  let j = r0;
  for (; j + 4 <= r1; j += 4) v128.store(y + (<usize>j << 2), f32x4.mul(v128.load(x + (<usize>j << 2)), iv));
  for (; j < r1; j++) store<f32>(y + (<usize>j << 2), f(x, j) * inv);
  if (q) quantizeBlocks(qfmt, y, q, n, r0 >> 5, r1 >> 5);
}

/** torch LayerNorm of T rows of n; weight/bias pointers 0 mean no affine. */
export function layerNorm(x: usize, y: usize, weight: usize, bias: usize, n: i32, eps: f64, T: i32): void {
  for (let t = 0; t < T; t++) {
    const xr = x + (<usize>(t * n) << 2);
    const yr = y + (<usize>(t * n) << 2);
    let mean: f64 = 0;
    for (let i = 0; i < n; i++) mean += f(xr, i);
    mean /= n;
    let variance: f64 = 0;
    for (let i = 0; i < n; i++) { const c = f(xr, i) - mean; variance += c * c; }
    const inv = 1 / Math.sqrt(variance / n + eps);
    for (let i = 0; i < n; i++) {
      let v = (f(xr, i) - mean) * inv;
      if (weight) v = v * f(weight, i) + f(bias, i);
      put(yr, i, v);
    }
  }
}

/** x_0 = embed[token] * scale into dst (d floats), from a table in any storage layout. */
export function embed(fmt: i32, table: usize, d: i32, token: i32, scale: f32, dst: usize): void {
  dequantizeRows(fmt, table, d, token, token + 1, dst);
  if (scale != 1) for (let i = 0; i < d; i++) put(dst, i, f(dst, i) * scale);
}

/**
 * The causal depthwise conv (kernel 4) + SiLU for T tokens and features
 * [r0, r1): out[t][i] = silu(sum_j w[i][j] x_{t-3+j}[i]). `state` [3, d]
 * holds the previous three inputs, oldest first, and is advanced past the
 * chunk. With q != 0 (one token, r0 and r1 multiples of 32) the features
 * written are also quantized for a product of format qfmt into q
 * (quantizeBlocks).
 */
export function shortConvStep(state: usize, x: usize, weight: usize, out: usize, d: i32, T: i32, qfmt: i32, q: usize, r0: i32, r1: i32, tid: i32): void {
  shortConvRange(state, x, weight, out, d, T, r0, r1, 1);
  if (q) quantizeBlocks(qfmt, out, q, d, r0 >> 5, r1 >> 5);
}

/**
 * shortConvStep of one token whose input is the RMS norm of x (d a
 * multiple of 32): every thread normalizes the features it convolves, the
 * normalized values entering the state, instead of the norm running on
 * one thread alone before the job.
 */
export function rmsConvStep(state: usize, x: usize, weight: usize, out: usize, d: i32, qfmt: i32, q: usize, r0: i32, r1: i32, tid: i32): void {
  shortConvRange(state, x, weight, out, d, 1, r0, r1, rmsInv(x, d));
  if (q) quantizeBlocks(qfmt, out, q, d, r0 >> 5, r1 >> 5);
}

// Inputs are x times `scale` (the RMS norm's factor; 1: x as given).
// @ts-ignore: decorator
@inline function shortConvRange(state: usize, x: usize, weight: usize, out: usize, d: i32, T: i32, r0: i32, r1: i32, scale: f32): void {
  const sv = f32x4.splat(scale);
  const s0 = state, s1 = state + (<usize>d << 2), s2 = state + (<usize>d << 3);
  const row = <usize>d << 2;
  let i = r0;
  // four features at a time, the last three inputs held in registers across the tokens
  for (; i + 4 <= r1; i += 4) {
    const o = <usize>i << 2;
    // weight is [d][4] (taps oldest first): transpose 4 features' taps
    const w = weight + (<usize>i << 4);
    const wa = v128.load(w), wb = v128.load(w, 16), wc = v128.load(w, 32), wd = v128.load(w, 48);
    const ab0 = i32x4.shuffle(wa, wb, 0, 4, 1, 5), ab1 = i32x4.shuffle(wa, wb, 2, 6, 3, 7);
    const cd0 = i32x4.shuffle(wc, wd, 0, 4, 1, 5), cd1 = i32x4.shuffle(wc, wd, 2, 6, 3, 7);
    const w0 = i64x2.shuffle(ab0, cd0, 0, 2), w1 = i64x2.shuffle(ab0, cd0, 1, 3);
    const w2 = i64x2.shuffle(ab1, cd1, 0, 2), w3 = i64x2.shuffle(ab1, cd1, 1, 3);
    let a = v128.load(s0 + o), b = v128.load(s1 + o), c = v128.load(s2 + o);
    for (let t = 0; t < T; t++) {
      const xt = f32x4.mul(v128.load(x + <usize>t * row + o), sv);
      const acc = madd(w3, xt, madd(w2, c, madd(w1, b, f32x4.mul(w0, a))));
      v128.store(out + <usize>t * row + o, silu4(acc));
      a = b;
      b = c;
      c = xt;
    }
    v128.store(s0 + o, a);
    v128.store(s1 + o, b);
    v128.store(s2 + o, c);
  }
  for (let t = 0; t < T; t++) {
    const xr = x + (<usize>(t * d) << 2);
    const or = out + (<usize>(t * d) << 2);
    for (let j = i; j < r1; j++) {
      const w = weight + (<usize>j << 4);
      const xi = f(xr, j) * scale;
      const acc = <f64>f(w, 0) * f(s0, j) + <f64>f(w, 1) * f(s1, j) + <f64>f(w, 2) * f(s2, j) + <f64>f(w, 3) * xi;
      store<f32>(s0 + (<usize>j << 2), f(s1, j));
      store<f32>(s1 + (<usize>j << 2), f(s2, j));
      store<f32>(s2 + (<usize>j << 2), xi);
      put(or, j, silu(acc));
    }
  }
}

// alpha and k for features [i0, i1) of one token (see decayKey).
// @ts-ignore: decorator
@inline function decayKeyRange(ar: usize, kr: usize, i0: i32, i1: i32): void {
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    const x = v128.load(ar + o);
    const ls = f32x4.sub(f32x4.min(x, f32x4.splat(0)), log1p4(exp4(f32x4.neg(f32x4.abs(x)))));
    const gk = f32x4.mul(ls, f32x4.splat(0.0625));
    const alpha = exp4(gk);
    v128.store(ar + o, alpha);
    v128.store(kr + o, f32x4.neg(expm1Neg4(gk, alpha)));
  }
  for (; i < i1; i++) {
    const x = <f64>f(ar, i);
    const gk = <f32>((min(x, 0) - <f64>Mathf.log1p(<f32>exp(-Math.abs(x)))) / 16);
    put(ar, i, Mathf.exp(gk));
    put(kr, i, -Mathf.expm1(gk));
  }
}

/**
 * MetaLA's decay and tied key from the k_gate output a (n per token, rows ld
 * apart): alpha = exp(logsigmoid(a) / 16) written over a, k = 1 - alpha
 * (as -expm1, exact for weak decay) into k [T, n].
 */
export function decayKey(a: usize, ld: i32, k: usize, n: i32, T: i32): void {
  for (let t = 0; t < T; t++) decayKeyRange(a + (<usize>(t * ld) << 2), k + (<usize>(t * n) << 2), 0, n);
}

// One GLA step of one head: S_h = diag(alpha) S_h + k^T v, o_h = (scale q) S_h,
// in one pass over S_h: rows i, K/4 + i, K/2 + i and 3K/4 + i together, so
// that four sequential streams (each quarter front to back) run side by side,
// o_h summed in place (in L1); the last K mod 4 rows one at a time. The state
// does not stay in cache between tokens (a decode step streams all the
// weights past it), so the order S is read in matters more than the extra
// loads and stores of o. Measured per layer of metala-380m (8 heads, two
// threads) after a sweep of the weights, on a busy machine: 57-89 us by
// column blocks of 16 (o in registers, S read with a stride of a row), 38-82
// us by halves (two streams); inside decode steps, interleaved in one
// process, 81 us by halves, 74 by quarters (one thread from cache: 52, 46).
// @ts-ignore: decorator
@inline function glaHead(Sh: usize, qh: usize, ah: usize, kh: usize, vh: usize, oh: usize, K: i32, V: i32, scale: f32): void {
  const vb = <usize>V << 2;
  for (let j: usize = 0; j < vb; j += 16) v128.store(oh + j, f32x4.splat(0));
  const quarter = K >> 2;
  const gap = <usize>quarter * vb;
  for (let i = 0; i < quarter; i++) {
    const i1 = i + quarter, i2 = i1 + quarter, i3 = i2 + quarter;
    const a0 = v128.load32_splat(ah + (<usize>i << 2)), a1 = v128.load32_splat(ah + (<usize>i1 << 2));
    const a2 = v128.load32_splat(ah + (<usize>i2 << 2)), a3 = v128.load32_splat(ah + (<usize>i3 << 2));
    const k0 = v128.load32_splat(kh + (<usize>i << 2)), k1 = v128.load32_splat(kh + (<usize>i1 << 2));
    const k2 = v128.load32_splat(kh + (<usize>i2 << 2)), k3 = v128.load32_splat(kh + (<usize>i3 << 2));
    const q0 = f32x4.splat(f(qh, i) * scale), q1 = f32x4.splat(f(qh, i1) * scale);
    const q2 = f32x4.splat(f(qh, i2) * scale), q3 = f32x4.splat(f(qh, i3) * scale);
    const S0 = Sh + <usize>i * vb, S1 = S0 + gap, S2 = S1 + gap, S3 = S2 + gap;
    for (let j: usize = 0; j < vb; j += 16) {
      const v = v128.load(vh + j);
      const s0 = madd(a0, v128.load(S0 + j), f32x4.mul(k0, v));
      const s1 = madd(a1, v128.load(S1 + j), f32x4.mul(k1, v));
      const s2 = madd(a2, v128.load(S2 + j), f32x4.mul(k2, v));
      const s3 = madd(a3, v128.load(S3 + j), f32x4.mul(k3, v));
      v128.store(S0 + j, s0);
      v128.store(S1 + j, s1);
      v128.store(S2 + j, s2);
      v128.store(S3 + j, s3);
      v128.store(oh + j, madd(q3, s3, madd(q2, s2, madd(q1, s1, madd(q0, s0, v128.load(oh + j))))));
    }
  }
  for (let i = quarter << 2; i < K; i++) {
    const a0 = v128.load32_splat(ah + (<usize>i << 2)), k0 = v128.load32_splat(kh + (<usize>i << 2));
    const q0 = f32x4.splat(f(qh, i) * scale);
    const S0 = Sh + <usize>i * vb;
    for (let j: usize = 0; j < vb; j += 16) {
      const s0 = madd(a0, v128.load(S0 + j), f32x4.mul(k0, v128.load(vh + j)));
      v128.store(S0 + j, s0);
      v128.store(oh + j, madd(q0, s0, v128.load(oh + j)));
    }
  }
}

/**
 * The recurrent GLA for heads [h0, h1) over T tokens: per head and token
 * S = diag(alpha) S + k^T v, then o = (K^-0.5 q) S. S is [H, K, V] f32.
 * q, alpha, v live in the fused projection rows (ld floats per token), k in
 * [T, H*K], o in [T, H*V]. V must be a multiple of 4.
 */
export function glaStep(S: usize, q: usize, alpha: usize, v: usize, ld: i32, k: usize, o: usize, H: i32, K: i32, V: i32, T: i32, h0: i32, h1: i32, tid: i32): void {
  const scale = <f32>(1 / Math.sqrt(<f64>K));
  const dk = H * K;
  const dv = H * V;
  for (let h = h0; h < h1; h++) {
    const Sh = S + <usize>(h * K) * (<usize>V << 2);
    for (let t = 0; t < T; t++) {
      const row = <usize>(t * ld) << 2;
      glaHead(Sh, q + row + (<usize>(h * K) << 2), alpha + row + (<usize>(h * K) << 2), k + (<usize>(t * dk + h * K) << 2), v + row + (<usize>(h * V) << 2), o + (<usize>(t * dv + h * V) << 2), K, V, scale);
    }
  }
}

/**
 * The token mixer from the projections to out_proj's input, for heads
 * [h0, h1) and T tokens: g bias, decay and key, the GLA step,
 * self-augmentation, head norm and the silu(g) gate. Heads are independent,
 * so one parallel job covers it all. Rows of the fused projection (q | a | v
 * | g) are ld floats apart; k goes to [T, dk], o to [T, d]. With q != 0
 * (one token, V a multiple of 32) each head's output is also quantized for
 * a product of format qfmt into q (quantizeBlocks).
 */
export function tokenMixerHeads(S: usize, P: usize, ld: i32, k: usize, gBias: usize, wAug: usize, o: usize, H: i32, K: i32, V: i32, T: i32, qfmt: i32, q: usize, h0: i32, h1: i32, tid: i32): void {
  const scale = <f32>(1 / Math.sqrt(<f64>K));
  const dk = H * K;
  const d = H * V;
  for (let h = h0; h < h1; h++) {
    const Sh = S + <usize>(h * K) * (<usize>V << 2);
    for (let t = 0; t < T; t++) {
      const row = P + (<usize>(t * ld) << 2);
      const kt = k + (<usize>(t * dk) << 2);
      const ot = o + (<usize>(t * d) << 2);
      const v = row + (<usize>(2 * dk) << 2);
      const g = v + (<usize>d << 2);
      const hv = <usize>(h * V) << 2;
      const hk = <usize>(h * K) << 2;
      const oh = ot + hv;
      decayKeyRange(row + (<usize>dk << 2), kt, h * K, (h + 1) * K);
      glaHead(Sh, row + hk, row + (<usize>dk << 2) + hk, kt + hk, v + hv, oh, K, V, scale);
      mixerTail(oh, row + hk, kt + hk, wAug + hk, v + hv, g + hv, gBias + hv, K, V);
      if (q) quantizeBlocks(qfmt, ot, q, d, (h * V) >> 5, ((h + 1) * V) >> 5);
    }
  }
}

// One head's output after its GLA step (one token): self-augmentation,
// head norm and the silu(g + g bias) gate in three passes over its V
// outputs (V a multiple of 4): o += sigmoid(w v) while summing for the
// mean, then the variance, then (o - mean) * inv * silu(g + b); w, the sum
// of q k w_aug over the head's K, on f32 lanes. Measured inside q8 decode
// steps of metala-380m against one pass per op and one adding the bias
// into g (two threads, alternated step by step in one process): the token
// mixer job 30.0 -> 28.9 and 31.8 -> 30.6 us a layer, the step 0.3% faster.
// @ts-ignore: decorator
@inline function mixerTail(oh: usize, qh: usize, kh: usize, wh: usize, vh: usize, gh: usize, bh: usize, K: i32, V: i32): void {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= K; i += 4) {
    const o = <usize>i << 2;
    acc = madd(f32x4.mul(v128.load(qh + o), v128.load(kh + o)), v128.load(wh + o), acc);
  }
  let w = hsum(acc);
  for (; i < K; i++) w += f(qh, i) * f(kh, i) * f(wh, i);
  const wv = f32x4.splat(w);
  const n = <usize>V << 2;
  let sum = f32x4.splat(0);
  for (let j: usize = 0; j < n; j += 16) {
    const x = f32x4.add(v128.load(oh + j), sigmoid4(f32x4.mul(wv, v128.load(vh + j))));
    v128.store(oh + j, x);
    sum = f32x4.add(sum, x);
  }
  const mean = f32x4.splat(hsum(sum) / <f32>V);
  let sq = f32x4.splat(0);
  for (let j: usize = 0; j < n; j += 16) {
    const c = f32x4.sub(v128.load(oh + j), mean);
    sq = madd(c, c, sq);
  }
  const inv = f32x4.splat(<f32>(1 / Math.sqrt(<f64>hsum(sq) / V + 1e-5)));
  for (let j: usize = 0; j < n; j += 16)
    v128.store(oh + j, f32x4.mul(f32x4.mul(f32x4.sub(v128.load(oh + j), mean), inv), silu4(f32x4.add(v128.load(gh + j), v128.load(bh + j)))));
}

/** y[t][i] += b[i] for T rows ld apart. */
export function addBias(y: usize, ld: i32, b: usize, n: i32, T: i32): void {
  for (let t = 0; t < T; t++) {
    const yr = y + (<usize>(t * ld) << 2);
    for (let i = 0; i < n; i++) put(yr, i, f(yr, i) + f(b, i));
  }
}

/**
 * out[t][i] = act(h1[i]) * h2[i] for features [r0, r1), where the fused
 * l1|l2 output row t holds h1 (n) then h2 (n). With q != 0 (one token, r0
 * and r1 multiples of 32) the features written are also quantized for a
 * product of format qfmt into q (quantizeBlocks).
 */
export function glu(h: usize, out: usize, n: i32, act: i32, T: i32, qfmt: i32, q: usize, r0: i32, r1: i32, tid: i32): void {
  gluRange(h, out, n, act, T, r0, r1);
  if (q) quantizeBlocks(qfmt, out, q, n, r0 >> 5, r1 >> 5);
}

/**
 * The fused l1|l2 product of one token (weights of format fmt, [2n, cols])
 * and the GLU after it, for features [r0, r1): rows [r0, r1) (h1) and
 * [n + r0, n + r1) (h2) into h, then out = act(h1) * h2 on them, with q !=
 * 0 (r0 and r1 multiples of 32) also quantized for a product of format
 * qfmt into q (quantizeBlocks), which must not be x. One job where the
 * product and the GLU were two, the GLU's arithmetic done by a thread
 * between its tiles' streams instead of by both while no weights stream.
 */
export function matVecGlu(fmt: i32, w: usize, x: usize, h: usize, cols: i32, n: i32, act: i32, out: usize, qfmt: i32, q: usize, r0: i32, r1: i32, tid: i32): void {
  matVecOf(fmt, w, x, h, cols, r0, r1, tid);
  matVecOf(fmt, w, x, h, cols, n + r0, n + r1, tid);
  gluRange(h, out, n, act, 1, r0, r1);
  if (q) quantizeBlocks(qfmt, out, q, n, r0 >> 5, r1 >> 5);
}

// @ts-ignore: decorator
@inline function matVecOf(fmt: i32, w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32, tid: i32): void {
  if (fmt == FMT_F32) matVecF32(w, x, y, cols, 0, r0, r1, tid);
  else if (fmt == FMT_F16) matVecF16(w, x, y, cols, 0, r0, r1, tid);
  else if (fmt == FMT_Q8) matVecQ8(w, x, y, cols, 0, r0, r1, tid);
  else matVecQ4(w, x, y, cols, 0, r0, r1, tid);
}

// @ts-ignore: decorator
@inline function gluRange(h: usize, out: usize, n: i32, act: i32, T: i32, r0: i32, r1: i32): void {
  for (let t = 0; t < T; t++) {
    const hr = h + (<usize>(2 * t * n) << 2);
    const or = out + (<usize>(t * n) << 2);
    let i = r0;
    // SiLU, the released models' activation, four at a time
    if (act == ACT_SILU) for (; i + 4 <= r1; i += 4) {
      const o = <usize>i << 2;
      v128.store(or + o, f32x4.mul(silu4(v128.load(hr + o)), v128.load(hr + o + (<usize>n << 2))));
    }
    for (; i < r1; i++) put(or, i, activation(act, f(hr, i)) * f(hr, n + i));
  }
}

/**
 * Loads one word of each 64-byte line of [at, at + bytes), so that the
 * lines are in this core's cache when a kernel reads them next: what a
 * thread of the pool does with a tile in hand while the job before it
 * finishes (src/cpu/pool-protocol.ts). Returns the words' xor, which keeps
 * the loads from being dropped.
 */
export function touchLines(at: usize, bytes: i32): i32 {
  let x = 0;
  const end = at + <usize>bytes;
  for (let p = at; p < end; p += 64) x ^= load<i32>(p);
  return x;
}

/** Index of the largest of n floats (the first one on ties): greedy sampling. */
export function argmax(x: usize, n: i32): i32 {
  let best = 0;
  let bv = f(x, 0);
  for (let i = 1; i < n; i++) {
    const v = f(x, i);
    if (v > bv) { bv = v; best = i; }
  }
  return best;
}

/**
 * The k largest of n floats, sorted descending, indices into idx (i32) and
 * values into val: insertion into a sorted list, O(n k) worst case but O(n)
 * for the usual k <= 100 since most values fail the first comparison.
 */
export function topK(x: usize, n: i32, k: i32, idx: usize, val: usize): i32 {
  let m = 0;
  for (let i = 0; i < n; i++) {
    const v = f(x, i);
    if (m == k && v <= f(val, k - 1)) continue;
    let p = m < k ? m : k - 1;
    while (p > 0 && f(val, p - 1) < v) {
      store<f32>(val + (<usize>p << 2), f(val, p - 1));
      store<i32>(idx + (<usize>p << 2), load<i32>(idx + (<usize>(p - 1) << 2)));
      p--;
    }
    store<f32>(val + (<usize>p << 2), v);
    store<i32>(idx + (<usize>p << 2), i);
    if (m < k) m++;
  }
  return m;
}


