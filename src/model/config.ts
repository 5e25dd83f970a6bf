import { MetalaError } from "../errors.js";
import { describeJson } from "../io/json-file.js";

/** Activations the official code accepts for `glu_act` (metala/utils.py). */
export const GLU_ACTIVATIONS = ["silu", "swish", "gelu", "relu", "elu", "sigmoid", "leak", "1+elu", "2+elu", "sine"] as const;
export type GluActivation = (typeof GLU_ACTIVATIONS)[number];

/** `simplermsnorm` is the weightless RMS norm; any other value the official code maps to nn.LayerNorm. */
export type NormType = "simplermsnorm" | "layernorm";

/** A validated MetaLA configuration, in the runtime's own names, with derived sizes. */
export interface MetalaConfig {
  hiddenSize: number; // d
  numLayers: number;
  numHeads: number; // H
  gluDim: number; // already resolved from -1 to d
  vocabSize: number;
  gluAct: GluActivation;
  bias: boolean; // GLU linear biases
  normType: NormType;
  noScaleEmbedding: boolean;
  tieWordEmbeddings: boolean | undefined; // undefined: decided by whether lm_head.weight exists
  padTokenId: number | null;
  bosTokenId: number | null;
  eosTokenId: number | null;
  // derived
  keyDim: number; // d/2
  headKeyDim: number; // K = d/(2H)
  headValueDim: number; // V = d/H
}

type Json = Record<string, unknown>;

function pick(raw: Json, names: string[]): unknown {
  for (const n of names) if (raw[n] !== undefined && raw[n] !== null) return raw[n];
  return undefined;
}

function positiveInt(raw: Json, names: string[], source: string, fallback?: number): number {
  const v = pick(raw, names);
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new MetalaError("config", `${source}: missing "${names[0]}"`);
  }
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0 || v > 2 ** 31)
    throw new MetalaError("config", `${source}: "${names[0]}" must be a positive integer, got ${describeJson(v)}`);
  return v;
}

function optionalBool(raw: Json, names: string[], source: string, fallback: boolean | undefined): boolean | undefined {
  const v = pick(raw, names);
  if (v === undefined) return fallback;
  if (typeof v !== "boolean") throw new MetalaError("config", `${source}: "${names[0]}" must be true or false, got ${describeJson(v)}`);
  return v;
}

function tokenId(raw: Json, name: string, source: string, fallback: number | null): number | null {
  let v = raw[name];
  if (v === undefined) return fallback;
  if (Array.isArray(v)) v = v[0]; // HF allows a list of eos ids; the first is the one we stop on by default
  if (v === null || v === undefined) return null;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
    throw new MetalaError("config", `${source}: "${name}" must be a token id, got ${describeJson(v)}`);
  return v;
}

/**
 * Parses a config.json object with the official MetaLA field names (and the
 * usual Hugging Face aliases). Defaults are those of the official
 * MetaLAConfig, so a released config that omits a field means what it meant
 * to the code that trained it.
 */
export function parseConfig(raw: unknown, source = "config.json"): MetalaConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new MetalaError("config", `${source}: expected a JSON object`);
  const r = raw as Json;
  if (r.model_type !== undefined && r.model_type !== "metala")
    throw new MetalaError("config", `${source}: model_type is ${describeJson(r.model_type)}, expected "metala"`);

  const hiddenSize = positiveInt(r, ["decoder_embed_dim", "hidden_size", "d_model", "n_embd"], source, 1024);
  const numLayers = positiveInt(r, ["decoder_layers", "num_hidden_layers", "n_layer", "num_layers"], source, 24);
  const numHeads = positiveInt(r, ["decoder_attention_heads", "num_attention_heads", "n_head", "num_heads"], source, 8);
  const vocabSize = positiveInt(r, ["vocab_size"], source, 32000);

  const gluRaw = pick(r, ["glu_dim", "intermediate_size"]);
  let gluDim: number;
  if (gluRaw === -1) gluDim = hiddenSize;
  else gluDim = positiveInt(r, ["glu_dim", "intermediate_size"], source, 5632);

  if (hiddenSize % 2 !== 0) throw new MetalaError("config", `${source}: decoder_embed_dim ${hiddenSize} must be even (key dim is d/2)`);
  const keyDim = hiddenSize / 2;
  if (keyDim % numHeads !== 0)
    throw new MetalaError("config", `${source}: key dim ${keyDim} (decoder_embed_dim/2) is not divisible by ${numHeads} heads`);

  const actRaw = pick(r, ["glu_act", "hidden_act"]) ?? "silu";
  if (typeof actRaw !== "string" || !(GLU_ACTIVATIONS as readonly string[]).includes(actRaw))
    throw new MetalaError("config", `${source}: glu_act ${describeJson(actRaw)} is not one of ${GLU_ACTIVATIONS.join(", ")}`);

  const normRaw = pick(r, ["norm_type"]) ?? "simplermsnorm";
  if (typeof normRaw !== "string" || !["simplermsnorm", "layernorm"].includes(normRaw))
    throw new MetalaError("config", `${source}: norm_type ${describeJson(normRaw)} must be "simplermsnorm" or "layernorm"`);

  return {
    hiddenSize,
    numLayers,
    numHeads,
    gluDim,
    vocabSize,
    gluAct: actRaw as GluActivation,
    bias: optionalBool(r, ["bias"], source, false)!,
    normType: normRaw as NormType,
    noScaleEmbedding: optionalBool(r, ["no_scale_embedding"], source, true)!,
    tieWordEmbeddings: optionalBool(r, ["tie_word_embeddings"], source, undefined),
    padTokenId: tokenId(r, "pad_token_id", source, 2),
    bosTokenId: tokenId(r, "bos_token_id", source, 1),
    eosTokenId: tokenId(r, "eos_token_id", source, 2),
    keyDim,
    headKeyDim: keyDim / numHeads,
    headValueDim: hiddenSize / numHeads,
  };
}

/**
 * Multiply-adds a prompt token costs in the layers' products (q|k_gate|v|g,
 * out, the GLU's two halves, down): every element of those matrices once.
 * The prefill's compute limit is their peak rate over this (metala bench).
 */
export function productMacsPerToken(c: MetalaConfig): number {
  const d = c.hiddenSize;
  return c.numLayers * d * (2 * c.keyDim + 2 * d + d + 3 * c.gluDim);
}

/** Parameters of the model (tied head counted once). */
export function parameterCount(c: MetalaConfig, tied: boolean): number {
  const d = c.hiddenSize;
  const mixer = 2 * c.keyDim * d + 3 * d * d + d + c.keyDim + 4 * d;
  const glu = 3 * d * c.gluDim + (c.bias ? 2 * c.gluDim + d : 0);
  const norms = c.normType === "layernorm" ? 4 * d : 0;
  const finalNorm = c.normType === "layernorm" ? 2 * d : 0;
  return c.vocabSize * d * (tied ? 1 : 2) + c.numLayers * (mixer + glu + norms) + finalNorm;
}
