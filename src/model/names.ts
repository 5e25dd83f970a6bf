import type { MetalaConfig } from "./config.js";

/**
 * The official checkpoint's tensor names (BICLab/MetaLA modeling_metala.py)
 * and the shape each must have. One table, used by the loader to validate and
 * by every engine to find its weights.
 */
export interface TensorSpec {
  name: string;
  shape: number[];
  optional?: boolean; // lm_head.weight: absent means tied to the embedding
}

export type LayerTensor =
  | "q_proj"
  | "k_gate"
  | "v_proj"
  | "g_proj"
  | "g_proj_bias"
  | "out_proj"
  | "aug_balance"
  | "conv1d"
  | "l1"
  | "l2"
  | "l3"
  | "l1_bias"
  | "l2_bias"
  | "l3_bias"
  | "token_norm_weight"
  | "token_norm_bias"
  | "channel_norm_weight"
  | "channel_norm_bias";

export const EMBED = "model.embed_tokens.weight";
export const LM_HEAD = "lm_head.weight";
export const FINAL_NORM_WEIGHT = "model.final_norm.weight";
export const FINAL_NORM_BIAS = "model.final_norm.bias";

const LAYER_SUFFIX: Record<LayerTensor, string> = {
  q_proj: "token_mixer.q_proj.weight",
  k_gate: "token_mixer.k_gate.weight",
  v_proj: "token_mixer.v_proj.weight",
  g_proj: "token_mixer.g_proj.weight",
  g_proj_bias: "token_mixer.g_proj.bias",
  out_proj: "token_mixer.out_proj.weight",
  aug_balance: "token_mixer.aug_balance",
  conv1d: "token_mixer.conv1d.weight",
  l1: "channel_mixer.l1.weight",
  l2: "channel_mixer.l2.weight",
  l3: "channel_mixer.l3.weight",
  l1_bias: "channel_mixer.l1.bias",
  l2_bias: "channel_mixer.l2.bias",
  l3_bias: "channel_mixer.l3.bias",
  token_norm_weight: "token_norm.weight",
  token_norm_bias: "token_norm.bias",
  channel_norm_weight: "channel_norm.weight",
  channel_norm_bias: "channel_norm.bias",
};

export function layerTensorName(layer: number, t: LayerTensor): string {
  return `model.layers.${layer}.${LAYER_SUFFIX[t]}`;
}

/** Shapes of one layer's tensors, or undefined for those this config does not have. */
export function layerTensorShape(c: MetalaConfig, t: LayerTensor): number[] | undefined {
  const d = c.hiddenSize;
  const ln = c.normType === "layernorm";
  switch (t) {
    case "q_proj":
    case "k_gate":
      return [c.keyDim, d];
    case "v_proj":
    case "g_proj":
    case "out_proj":
      return [d, d];
    case "g_proj_bias":
      return [d];
    case "aug_balance":
      return [c.keyDim];
    case "conv1d":
      return [d, 1, 4];
    case "l1":
    case "l2":
      return [c.gluDim, d];
    case "l3":
      return [d, c.gluDim];
    case "l1_bias":
    case "l2_bias":
      return c.bias ? [c.gluDim] : undefined;
    case "l3_bias":
      return c.bias ? [d] : undefined;
    case "token_norm_weight":
    case "token_norm_bias":
    case "channel_norm_weight":
    case "channel_norm_bias":
      return ln ? [d] : undefined;
  }
}

export const LAYER_TENSORS = Object.keys(LAYER_SUFFIX) as LayerTensor[];

/** Every tensor a checkpoint of this config holds, with its shape. */
export function expectedTensors(c: MetalaConfig): TensorSpec[] {
  const specs: TensorSpec[] = [{ name: EMBED, shape: [c.vocabSize, c.hiddenSize] }];
  for (let i = 0; i < c.numLayers; i++)
    for (const t of LAYER_TENSORS) {
      const shape = layerTensorShape(c, t);
      if (shape) specs.push({ name: layerTensorName(i, t), shape });
    }
  if (c.normType === "layernorm")
    specs.push({ name: FINAL_NORM_WEIGHT, shape: [c.hiddenSize] }, { name: FINAL_NORM_BIAS, shape: [c.hiddenSize] });
  specs.push({ name: LM_HEAD, shape: [c.vocabSize, c.hiddenSize], optional: c.tieWordEmbeddings !== false });
  return specs;
}
