import type { MetalaConfig } from "../model/config.js";
import { EMBED, FINAL_NORM_BIAS, FINAL_NORM_WEIGHT, LM_HEAD, layerTensorName, type LayerTensor } from "../model/names.js";
import type { WeightSource } from "../model/source.js";
import type { GluWeights, NormWeights } from "./ops.js";

/** One decoder layer's weights, as f32 in torch layout. */
export interface LayerWeights {
  tokenNorm: NormWeights;
  conv: Float32Array; // conv1d.weight [d, 1, 4], read as [d, 4]
  qProj: Float32Array; // [d/2, d]
  kGate: Float32Array; // [d/2, d]
  vProj: Float32Array; // [d, d]
  gProj: Float32Array; // [d, d]
  gProjBias: Float32Array; // [d]
  augBalance: Float32Array; // [d/2]
  outProj: Float32Array; // [d, d]
  channelNorm: NormWeights;
  glu: GluWeights;
}

export interface ModelWeights {
  config: MetalaConfig;
  embed: Float32Array; // [vocab, d]
  layers: LayerWeights[];
  finalNorm: NormWeights;
  head: Float32Array; // [vocab, d]: lm_head.weight, or the embedding itself when tied
}

/** Reads every tensor the forward pass uses into memory (the reference engine is for small models). */
export async function loadWeights(source: WeightSource): Promise<ModelWeights> {
  const c = source.config;
  const readNorm = async (weight: string, bias: string): Promise<NormWeights> =>
    c.normType === "simplermsnorm" ? { type: "simplermsnorm" } : { type: "layernorm", weight: await source.read(weight), bias: await source.read(bias) };
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const read = (t: LayerTensor) => source.read(layerTensorName(l, t));
    const readBias = (t: LayerTensor) => (c.bias ? read(t) : Promise.resolve(null));
    layers.push({
      tokenNorm: await readNorm(layerTensorName(l, "token_norm_weight"), layerTensorName(l, "token_norm_bias")),
      conv: await read("conv1d"),
      qProj: await read("q_proj"),
      kGate: await read("k_gate"),
      vProj: await read("v_proj"),
      gProj: await read("g_proj"),
      gProjBias: await read("g_proj_bias"),
      augBalance: await read("aug_balance"),
      outProj: await read("out_proj"),
      channelNorm: await readNorm(layerTensorName(l, "channel_norm_weight"), layerTensorName(l, "channel_norm_bias")),
      glu: { l1: await read("l1"), l2: await read("l2"), l3: await read("l3"), l1Bias: await readBias("l1_bias"), l2Bias: await readBias("l2_bias"), l3Bias: await readBias("l3_bias") },
    });
  }
  const embed = await source.read(EMBED);
  return {
    config: c,
    embed,
    layers,
    finalNorm: await readNorm(FINAL_NORM_WEIGHT, FINAL_NORM_BIAS),
    head: source.tiedHead ? embed : await source.read(LM_HEAD),
  };
}
