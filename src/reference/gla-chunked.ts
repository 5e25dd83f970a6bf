import type { GlaSequence } from "./gla.js";
import type { GlaShape } from "./ops.js";

/**
 * The chunked (parallel) form of GLA with per-key-dimension decay, spec
 * metala-model.md §4: the blueprint of the GPU prefill kernel.
 *
 * It computes exactly what T calls of glaStep compute (same S update, same
 * read-out with scale K^-0.5), but in a form with little sequential work.
 * For one head and one chunk of tokens [start, start + len), with S0 the state
 * entering the chunk and b_t = gk_start + ... + gk_t (inclusive cumulative log
 * decay, per key dim; non-increasing in t because every gk < 0):
 *
 *   o_t   = s (q_t * exp(b_t)) S0  +  sum_{u <= t} A[t,u] v_u
 *   A[t,u] = s sum_i q_t[i] k_u[i] exp(b_t[i] - b_u[i])            (u <= t)
 *   S_end = diag(exp(b_last)) S0 + sum_u (k_u * exp(b_last - b_u))^T v_u
 *
 * Stability: every exponent above is <= 0. The tempting factorisation
 * A = (q exp(b)) (k exp(-b))^T over the whole chunk needs exp(-b_u), and with
 * strong decay (gk = -30 per token, b down to -1920 in a chunk) exp(1920) is
 * Infinity and 0 * Infinity is NaN. Here, as in flash-linear-attention, the
 * factorisation is only used between 16-row sub-chunks, relative to the first
 * row n of the QUERY sub-chunk: q_t exp(b_t - b_n) and k_u exp(b_n - b_u),
 * both exponents <= 0 because u < n <= t. The 16x16 diagonal blocks (u and t
 * in the same sub-chunk) are computed elementwise with exp(b_t - b_u).
 *
 * One function below = one GPU dispatch, with the grid named in its comment:
 *
 *   1. chunkLogDecay  grid (H, chunks)           b: prefix sums of gk within each chunk
 *   2. chunkStates    grid (H, K, V) [tiles]     the only sequential part: a loop over
 *                                                chunks; writes S0 of every chunk (f32)
 *                                                and the final state
 *   3. chunkScores    grid (H, chunks, 10 sub-chunk pairs (qs, ks <= qs) of the 4x4)
 *                                                A, lower triangular
 *   4. chunkOutput    grid (H, chunks, V) [tiles]  o = s (q exp(b)) S0 + A v
 *
 * Dispatches 1, 3 and 4 are independent across chunks. Dispatch 2 can also be
 * split as on the GPU: each chunk's own contribution
 * sum_u (k_u exp(b_last - b_u))^T v_u in parallel, then a short scan over
 * chunks S <- exp(b_last) S + contribution.
 *
 * Precision: every sum is f64 here (f32 on the GPU); the states between
 * chunks are rounded to f32, as the GPU stores them and as the engine-neutral
 * state is defined. In f32 a factor such as exp(b_n - b_u) may underflow to 0
 * (single-step log decays reach -96 in the strong-decay fixture); that is
 * harmless, because the true term exp(b_t - b_u) is smaller than each of its
 * factors and so is itself below f32 resolution.
 *
 * The self-augmentation, head norm and output gate are per token and come
 * after this (see forward.ts).
 */

/** Tokens per chunk (flash-linear-attention's chunk size). */
export const CHUNK = 64;
/** Rows per sub-chunk: the granularity of the stable factorisation of A. */
export const SUB_CHUNK = 16;

/** The tokens [start, start + len) of one chunk. */
interface Chunk {
  start: number;
  len: number;
}

function chunksOf(T: number): Chunk[] {
  const chunks: Chunk[] = [];
  for (let start = 0; start < T; start += CHUNK) chunks.push({ start, len: Math.min(CHUNK, T - start) });
  return chunks;
}

/**
 * Dispatch 1, one workgroup per (head, chunk): b[t][i] = sum of gk[start..start+t][h*K + i].
 * Returns len rows of K.
 */
function chunkLogDecay(gk: Float64Array[], h: number, chunk: Chunk, K: number): Float64Array[] {
  const b: Float64Array[] = [];
  const running = new Float64Array(K);
  for (let t = 0; t < chunk.len; t++) {
    for (let i = 0; i < K; i++) running[i] += gk[chunk.start + t][h * K + i];
    b.push(running.slice());
  }
  return b;
}

/**
 * Dispatch 2, one thread per state entry (h, i, j), looping over the chunks
 * in order: each entry S[i][j] evolves on its own,
 *   S[i][j] <- exp(b_last[i]) S[i][j] + sum_u k_u[i] exp(b_last[i] - b_u[i]) v_u[j].
 * Returns the state entering each chunk ([K, V], f32) and leaves the state
 * after the last chunk in Sh.
 */
function chunkStates(seq: GlaSequence, h: number, chunks: Chunk[], b: Float64Array[][], Sh: Float32Array, shape: GlaShape): Float32Array[] {
  const { K, V } = shape;
  const entering: Float32Array[] = [];
  chunks.forEach((chunk, c) => {
    entering.push(Sh.slice());
    const bLast = b[c][chunk.len - 1];
    // k_u decayed to the end of the chunk; exponent b_last - b_u <= 0.
    const kDecayed = b[c].map((bu, u) => Float64Array.from({ length: K }, (_, i) => seq.k[chunk.start + u][h * K + i] * Math.exp(bLast[i] - bu[i])));
    for (let i = 0; i < K; i++) {
      const carry = Math.exp(bLast[i]);
      for (let j = 0; j < V; j++) {
        let acc = carry * Sh[i * V + j];
        for (let u = 0; u < chunk.len; u++) acc += kDecayed[u][i] * seq.v[chunk.start + u][h * V + j];
        Sh[i * V + j] = acc; // rounded to f32 between chunks
      }
    }
  });
  return entering;
}

/**
 * Dispatch 3, one workgroup per (head, chunk, query sub-chunk qs, key
 * sub-chunk ks <= qs): the 16x16 block A[qs rows][ks columns] of the chunk's
 * causal score matrix (len x len, lower triangular; the rest stays 0).
 */
function chunkScores(seq: GlaSequence, h: number, chunk: Chunk, b: Float64Array[], K: number): Float64Array[] {
  const s = 1 / Math.sqrt(K);
  const A = Array.from({ length: chunk.len }, () => new Float64Array(chunk.len));
  const q = (t: number, i: number) => seq.q[chunk.start + t][h * K + i];
  const k = (u: number, i: number) => seq.k[chunk.start + u][h * K + i];
  for (let n = 0; n < chunk.len; n += SUB_CHUNK) {
    const qEnd = Math.min(n + SUB_CHUNK, chunk.len);
    // Off-diagonal blocks: key sub-chunks entirely before row n. Factored
    // relative to b_n: each factor's exponent is <= 0, so neither overflows.
    const qg: Float64Array[] = [];
    for (let t = n; t < qEnd; t++) qg.push(Float64Array.from({ length: K }, (_, i) => q(t, i) * Math.exp(b[t][i] - b[n][i])));
    for (let m = 0; m < n; m += SUB_CHUNK) {
      const kg: Float64Array[] = [];
      for (let u = m; u < m + SUB_CHUNK; u++) kg.push(Float64Array.from({ length: K }, (_, i) => k(u, i) * Math.exp(b[n][i] - b[u][i])));
      for (let t = n; t < qEnd; t++)
        for (let u = m; u < m + SUB_CHUNK; u++) {
          let acc = 0;
          for (let i = 0; i < K; i++) acc += qg[t - n][i] * kg[u - m][i];
          A[t][u] = s * acc;
        }
    }
    // Diagonal block: elementwise, exp(b_t - b_u) with u <= t.
    for (let t = n; t < qEnd; t++)
      for (let u = n; u <= t; u++) {
        let acc = 0;
        for (let i = 0; i < K; i++) acc += q(t, i) * k(u, i) * Math.exp(b[t][i] - b[u][i]);
        A[t][u] = s * acc;
      }
  }
  return A;
}

/**
 * Dispatch 4, one workgroup per (head, chunk) [and V tile]:
 * o_t = s (q_t * exp(b_t)) S0 + sum_{u <= t} A[t,u] v_u, written into o[t][h*V ..].
 */
function chunkOutput(seq: GlaSequence, h: number, chunk: Chunk, b: Float64Array[], S0: Float32Array, A: Float64Array[], shape: GlaShape, o: Float64Array[]): void {
  const { K, V } = shape;
  const s = 1 / Math.sqrt(K);
  for (let t = 0; t < chunk.len; t++) {
    // q_t decayed from the chunk start; exponent b_t <= 0.
    const qDecayed = Float64Array.from({ length: K }, (_, i) => s * seq.q[chunk.start + t][h * K + i] * Math.exp(b[t][i]));
    const row = o[chunk.start + t];
    for (let j = 0; j < V; j++) {
      let acc = 0;
      for (let i = 0; i < K; i++) acc += qDecayed[i] * S0[i * V + j];
      for (let u = 0; u <= t; u++) acc += A[t][u] * seq.v[chunk.start + u][h * V + j];
      row[h * V + j] = acc;
    }
  }
}

/**
 * GLA over a whole sequence in chunks. S ([H, K, V], f32) is the state
 * before the first token and is left holding the state after the last.
 * Returns o per token [H*V] (before self-augmentation and head norm).
 */
export function glaChunked(seq: GlaSequence, S: Float32Array, shape: GlaShape): Float64Array[] {
  const { H, K, V } = shape;
  const T = seq.q.length;
  const o = Array.from({ length: T }, () => new Float64Array(H * V));
  const chunks = chunksOf(T);
  for (let h = 0; h < H; h++) {
    const b = chunks.map((chunk) => chunkLogDecay(seq.gk, h, chunk, K));
    const Sh = S.subarray(h * K * V, (h + 1) * K * V);
    const entering = chunkStates(seq, h, chunks, b, Sh, shape);
    chunks.forEach((chunk, c) => {
      const A = chunkScores(seq, h, chunk, b[c], K);
      chunkOutput(seq, h, chunk, b[c], entering[c], A, shape, o);
    });
  }
  return o;
}
