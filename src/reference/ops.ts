import type { GluActivation } from "../model/config.js";

/**
 * The ops of one MetaLA forward pass, one function each, in float64.
 *
 * This is the oracle every engine is tested against, so each function is the
 * plainest form of its math (spec metala-model.md §2). The AssemblyScript
 * (assembly/) and WGSL (shaders/) kernels use the same names, so one search
 * finds all three forms of an op.
 *
 * Activations are Float64Array; weights are Float32Array exactly as a
 * WeightSource returns them (torch layout: a Linear weight is [out, in]).
 */

// ---------------------------------------------------------------- scalars

/** 1 / (1 + e^-x), without overflow of e^-x for very negative x. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

export function silu(x: number): number {
  return x * sigmoid(x);
}

/** log(sigmoid(x)) = -log(1 + e^-x) = min(x, 0) - log1p(e^-|x|): no overflow, no log(0). */
export function logSigmoid(x: number): number {
  return Math.min(x, 0) - Math.log1p(Math.exp(-Math.abs(x)));
}

/**
 * The error function to double precision. JavaScript has no Math.erf.
 * Uses erf(x) = 2/sqrt(pi) * e^(-x^2) * sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)),
 * a series of positive terms (no cancellation) that converges for every x;
 * beyond |x| = 6 erf is +-1 to double precision (erfc(6) ~ 2e-17).
 */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax >= 6) return Math.sign(x);
  let term = ax;
  let sum = ax;
  for (let n = 1; term > sum * 1e-17; n++) {
    term *= (2 * ax * ax) / (2 * n + 1);
    sum += term;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-ax * ax) * sum;
}

/** torch.nn.functional.gelu with its default approximate="none": x * Phi(x). */
export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** torch.nn.functional.elu with alpha = 1. */
export function elu(x: number): number {
  return x > 0 ? x : Math.expm1(x);
}

/**
 * The GLU activation named by `glu_act`, exactly as the official
 * metala/utils.py get_activation_fn maps it ("leak" is leaky_relu with
 * torch's default slope 0.01).
 */
export function gluActivation(name: GluActivation): (x: number) => number {
  switch (name) {
    case "silu":
    case "swish":
      return silu;
    case "gelu":
      return gelu;
    case "relu":
      return (x) => (x > 0 ? x : 0);
    case "elu":
      return elu;
    case "sigmoid":
      return sigmoid;
    case "leak":
      return (x) => (x >= 0 ? x : 0.01 * x);
    case "1+elu":
      return (x) => 1 + elu(x);
    case "2+elu":
      return (x) => 2 + elu(x);
    case "sine":
      return Math.sin;
  }
}

// ---------------------------------------------------------------- vectors

/** "simplermsnorm": x / sqrt(mean(x^2) + eps), no weight. */
export function rmsNorm(x: Float64Array, eps = 1e-6): Float64Array {
  let sumSq = 0;
  for (let i = 0; i < x.length; i++) sumSq += x[i] * x[i];
  const inv = 1 / Math.sqrt(sumSq / x.length + eps);
  return x.map((xi) => xi * inv);
}

/** torch LayerNorm over the whole vector: biased variance, optional affine weight and bias. */
export function layerNorm(x: Float64Array, weight: Float32Array | null, bias: Float32Array | null, eps: number): Float64Array {
  const n = x.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i];
  mean /= n;
  let variance = 0;
  for (let i = 0; i < n; i++) variance += (x[i] - mean) ** 2;
  variance /= n;
  const inv = 1 / Math.sqrt(variance + eps);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const y = (x[i] - mean) * inv;
    out[i] = y * (weight ? weight[i] : 1) + (bias ? bias[i] : 0);
  }
  return out;
}

/** The weights of one of the model's norms: the weightless RMS norm, or LayerNorm (eps 1e-5) with weight and bias. */
export type NormWeights = { type: "simplermsnorm" } | { type: "layernorm"; weight: Float32Array; bias: Float32Array };

/** The pre-norm of a token mixer or channel mixer, and the final norm, whichever kind the config chose. */
export function norm(x: Float64Array, w: NormWeights): Float64Array {
  return w.type === "simplermsnorm" ? rmsNorm(x) : layerNorm(x, w.weight, w.bias, 1e-5);
}

/** y = W x (+ bias), W stored [rows, cols] row-major (torch Linear: [out, in]). */
export function matVec(W: Float32Array, rows: number, cols: number, x: Float64Array, bias?: Float32Array | null): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let acc = bias ? bias[r] : 0;
    const base = r * cols;
    for (let c = 0; c < cols; c++) acc += W[base + c] * x[c];
    y[r] = acc;
  }
  return y;
}

/** x_0 = embed[token] * scale (scale is 1, or sqrt(d) when no_scale_embedding is false). */
export function embed(table: Float32Array, d: number, token: number, scale: number): Float64Array {
  const x = new Float64Array(d);
  for (let i = 0; i < d; i++) x[i] = table[token * d + i] * scale;
  return x;
}

/** logits = head x, head [vocab, d] (lm_head.weight, or embed_tokens.weight when tied). */
export function lmHead(head: Float32Array, vocab: number, d: number, x: Float64Array): Float64Array {
  return matVec(head, vocab, d, x);
}

// ---------------------------------------------------------------- token mixer

/**
 * One step of the causal depthwise conv (kernel 4, no bias) followed by SiLU:
 * out[i] = silu(w[i][0] x_{t-3}[i] + w[i][1] x_{t-2}[i] + w[i][2] x_{t-1}[i] + w[i][3] x_t[i]).
 * `state` holds the previous three inputs [3, d], oldest first; this call
 * shifts x_t into it. `weight` is conv1d.weight [d, 1, 4] read as [d, 4].
 */
export function shortConvStep(state: Float64Array, x: Float64Array, weight: Float32Array): Float64Array {
  const d = x.length;
  const out = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    const acc = weight[4 * i] * state[i] + weight[4 * i + 1] * state[d + i] + weight[4 * i + 2] * state[2 * d + i] + weight[4 * i + 3] * x[i];
    out[i] = silu(acc);
  }
  state.copyWithin(0, d); // drop the oldest row
  state.set(x, 2 * d);
  return out;
}

/**
 * MetaLA's decay and its tied key, from the k_gate projection a:
 * gk = logsigmoid(a) / 16 (log of the decay, < 0), alpha = exp(gk), k = 1 - alpha.
 * k is computed as -expm1(gk): when the decay is weak (gk ~ -1e-9) 1 - exp(gk)
 * would cancel to a few correct digits.
 */
export function decayKey(a: Float64Array): { gk: Float64Array; alpha: Float64Array; k: Float64Array } {
  const gk = a.map((ai) => logSigmoid(ai) / 16);
  return { gk, alpha: gk.map(Math.exp), k: gk.map((g) => -Math.expm1(g)) };
}

/** Sizes of the GLA state of one layer: H heads, each S_h of [K, V]. */
export interface GlaShape {
  H: number;
  K: number;
  V: number;
}

/**
 * One recurrent GLA step for all heads (fused_recurrent_gla): per head h,
 *   S_h = diag(alpha_h) S_h + k_h^T v_h      (update first)
 *   o_h = (K^-0.5 q_h) S_h                  (then read out)
 * S is [H, K, V], updated in place. The arithmetic is f64; the caller picks
 * where S is rounded to f32 by the array it passes (a Float32Array rounds
 * every entry as it is stored, as the official kernel's f32 state does).
 * q, k, alpha: [H*K]; v: [H*V]. Returns o: [H*V].
 */
export function glaStep(S: Float32Array | Float64Array, q: Float64Array, k: Float64Array, alpha: Float64Array, v: Float64Array, shape: GlaShape): Float64Array {
  const { H, K, V } = shape;
  const scale = 1 / Math.sqrt(K);
  const o = new Float64Array(H * V);
  for (let h = 0; h < H; h++)
    for (let i = 0; i < K; i++) {
      const qi = q[h * K + i] * scale;
      const ki = k[h * K + i];
      const ai = alpha[h * K + i];
      const row = (h * K + i) * V;
      for (let j = 0; j < V; j++) {
        S[row + j] = ai * S[row + j] + ki * v[h * V + j];
        o[h * V + j] += qi * S[row + j];
      }
    }
  return o;
}

/**
 * Self-augmentation, per head: o_h += sigmoid((q_h . (k_h * w_aug_h)) * v_h),
 * the sigmoid taken elementwise over V of a per-head scalar times v_h. q is
 * NOT scaled here (the K^-0.5 lives inside the GLA kernel only).
 */
export function selfAugment(o: Float64Array, q: Float64Array, k: Float64Array, wAug: Float32Array, v: Float64Array, shape: GlaShape): Float64Array {
  const { H, K, V } = shape;
  const out = new Float64Array(o.length);
  for (let h = 0; h < H; h++) {
    let w = 0;
    for (let i = 0; i < K; i++) w += q[h * K + i] * k[h * K + i] * wAug[h * K + i];
    for (let j = 0; j < V; j++) out[h * V + j] = o[h * V + j] + sigmoid(w * v[h * V + j]);
  }
  return out;
}

/** LayerNorm over each head's V features (eps 1e-5, no affine): the official group_norm. */
export function headNorm(o: Float64Array, H: number, V: number): Float64Array {
  const out = new Float64Array(o.length);
  for (let h = 0; h < H; h++) out.set(layerNorm(o.subarray(h * V, (h + 1) * V), null, null, 1e-5), h * V);
  return out;
}

/** silu(g) * o, elementwise over d; the token mixer's out_proj follows. */
export function gateOutput(g: Float64Array, o: Float64Array): Float64Array {
  return g.map((gi, i) => silu(gi) * o[i]);
}

// ---------------------------------------------------------------- channel mixer

export interface GluWeights {
  l1: Float32Array; // [gluDim, d]
  l2: Float32Array; // [gluDim, d]
  l3: Float32Array; // [d, gluDim]
  l1Bias: Float32Array | null;
  l2Bias: Float32Array | null;
  l3Bias: Float32Array | null;
}

/** GLU(x) = l3( act(l1 x) * (l2 x) ). */
export function glu(x: Float64Array, w: GluWeights, gluDim: number, act: (x: number) => number): Float64Array {
  const d = x.length;
  const a = matVec(w.l1, gluDim, d, x, w.l1Bias);
  const b = matVec(w.l2, gluDim, d, x, w.l2Bias);
  const h = a.map((ai, i) => act(ai) * b[i]);
  return matVec(w.l3, d, gluDim, h, w.l3Bias);
}

// ---------------------------------------------------------------- loss

/** log softmax, shifted by the max so that exp never overflows. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const logSum = Math.log(sum);
  return Float64Array.from(logits, (l) => l - max - logSum); // not l - (max + logSum): that loses digits of logSum when max is large
}

/**
 * Mean negative log-likelihood of tokens[1..T-1] given the logits at the
 * positions before them (logits[t] predicts tokens[t+1]); null when T < 2.
 */
export function nll(logits: ArrayLike<number>[], tokens: ArrayLike<number>): number | null {
  if (tokens.length < 2) return null;
  let total = 0;
  for (let t = 1; t < tokens.length; t++) total -= logSoftmax(logits[t - 1])[tokens[t]];
  return total / (tokens.length - 1);
}
