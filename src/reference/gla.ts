import { glaChunked } from "./gla-chunked.js";
import { glaStep, type GlaShape } from "./ops.js";

/** One layer's GLA inputs, one array per token, all heads: q, k, gk [H*K]; v [H*V]. */
export interface GlaSequence {
  q: Float64Array[];
  k: Float64Array[];
  gk: Float64Array[];
  v: Float64Array[];
}

/** How a sequence goes through GLA: token by token (the definition), or in chunks (the prefill blueprint). */
export type GlaMode = "recurrent" | "chunked";

/**
 * GLA over a sequence one token at a time, as fused_recurrent_gla does: the
 * definition the chunked form must match. The state stays f64 for the whole
 * sequence and is rounded to f32 once, at the end (so a call of one token
 * rounds after that token, like a decode step of any engine).
 */
export function glaRecurrent(seq: GlaSequence, S: Float32Array, shape: GlaShape): Float64Array[] {
  const S64 = Float64Array.from(S);
  const o = seq.q.map((q, t) => glaStep(S64, q, seq.k[t], seq.gk[t].map(Math.exp), seq.v[t], shape));
  S.set(S64);
  return o;
}

/** GLA over a sequence from state S ([H, K, V] f32, left holding the final state); o per token [H*V]. */
export function gla(mode: GlaMode, seq: GlaSequence, S: Float32Array, shape: GlaShape): Float64Array[] {
  return mode === "chunked" ? glaChunked(seq, S, shape) : glaRecurrent(seq, S, shape);
}
