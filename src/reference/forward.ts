import type { LogitsWanted, ModelState } from "../engine.js";
import type { MetalaConfig } from "../model/config.js";
import { gla, type GlaMode } from "./gla.js";
import { decayKey, embed, gateOutput, glu, gluActivation, headNorm, lmHead, matVec, norm, selfAugment, shortConvStep, type GlaShape } from "./ops.js";
import type { LayerWeights, ModelWeights } from "./weights.js";

/**
 * The MetaLA forward pass over a sequence, layer by layer (each layer sees
 * all T tokens before the next layer starts, as a prefill kernel does), in
 * float64 activations. Spec metala-model.md §2; official modeling_metala.py.
 */

function add(x: Float64Array, y: Float64Array): Float64Array {
  return x.map((xi, i) => xi + y[i]);
}

/** x + TokenMixer(norm(x)) for every token; advances the layer's S and conv state. */
function tokenMixer(w: LayerWeights, c: MetalaConfig, xs: Float64Array[], state: ModelState["layers"][number], mode: GlaMode): Float64Array[] {
  const d = c.hiddenSize;
  const dk = c.keyDim;
  const shape: GlaShape = { H: c.numHeads, K: c.headKeyDim, V: c.headValueDim };

  const convState = Float64Array.from(state.conv);
  const conved = xs.map((x) => shortConvStep(convState, norm(x, w.tokenNorm), w.conv));
  state.conv.set(convState); // the engine-neutral conv state is f32

  const q = conved.map((x) => matVec(w.qProj, dk, d, x));
  const decay = conved.map((x) => decayKey(matVec(w.kGate, dk, d, x)));
  const k = decay.map((dec) => dec.k);
  const v = conved.map((x) => matVec(w.vProj, d, d, x));
  const g = conved.map((x) => matVec(w.gProj, d, d, x, w.gProjBias));

  const o = gla(mode, { q, k, gk: decay.map((dec) => dec.gk), v }, state.S, shape);

  return xs.map((x, t) => {
    const mixed = headNorm(selfAugment(o[t], q[t], k[t], w.augBalance, v[t], shape), shape.H, shape.V);
    return add(x, matVec(w.outProj, d, d, gateOutput(g[t], mixed)));
  });
}

/** x + GLU(norm(x)) for every token. */
function channelMixer(w: LayerWeights, c: MetalaConfig, xs: Float64Array[]): Float64Array[] {
  const act = gluActivation(c.gluAct);
  return xs.map((x) => add(x, glu(norm(x, w.channelNorm), w.glu, c.gluDim, act)));
}

/**
 * Consumes `tokens` from `state` (updated in place: S and conv per layer,
 * position) and returns the f64 logits at the positions asked for. The token
 * ids must already be valid. `mode` picks the GLA form; both compute the same
 * function, up to rounding.
 */
export function forward(w: ModelWeights, tokens: ArrayLike<number>, state: ModelState, mode: GlaMode, want: LogitsWanted): Float64Array[] {
  const c = w.config;
  const d = c.hiddenSize;
  const scale = c.noScaleEmbedding ? 1 : Math.sqrt(d);
  let xs = Array.from(tokens, (token) => embed(w.embed, d, token, scale));
  w.layers.forEach((layer, l) => {
    xs = channelMixer(layer, c, tokenMixer(layer, c, xs, state.layers[l], mode));
  });
  state.position += xs.length;
  const rows = want === "all" ? xs : want === "last" ? xs.slice(-1) : [];
  return rows.map((x) => lmHead(w.head, c.vocabSize, d, norm(x, w.finalNorm)));
}
