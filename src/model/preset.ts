import { MetalaError } from "../errors.js";
import { parseConfig, parameterCount, type MetalaConfig } from "./config.js";
import { EMBED, expectedTensors, LM_HEAD, type TensorSpec } from "./names.js";
import type { StoredDType, WeightSource } from "./source.js";

export interface Preset {
  name: string;
  description: string;
  /** A config.json with the official field names, as a released checkpoint would carry. */
  configJson: Record<string, unknown>;
}

/** Benchmark models with seeded random weights, sized like the released checkpoints (untied head, as they have). */
export const PRESETS: readonly Preset[] = [
  {
    name: "metala-380m",
    description: "random weights, the size of the smallest released MetaLA (d 1024, 24 layers, 8 heads)",
    configJson: preset(1024, 24, 8, 2816),
  },
  {
    name: "metala-1b",
    description: "random weights, about the size of the released 1B MetaLA (d 1536, 32 layers, 16 heads)",
    configJson: preset(1536, 32, 16, 4096),
  },
];

function preset(d: number, layers: number, heads: number, glu: number): Record<string, unknown> {
  return {
    model_type: "metala",
    decoder_embed_dim: d,
    decoder_layers: layers,
    decoder_attention_heads: heads,
    glu_dim: glu,
    vocab_size: 32000,
    glu_act: "silu",
    norm_type: "simplermsnorm",
    bias: false,
    no_scale_embedding: true,
    tie_word_embeddings: false,
  };
}

/** The named preset's weights; `seed` picks another random model of the same shape. */
export function presetSource(name: string, seed = 1): WeightSource {
  const p = PRESETS.find((x) => x.name === name);
  if (!p) throw new MetalaError("usage", `unknown preset "${name}"; presets: ${PRESETS.map((x) => x.name).join(", ")}`);
  return randomWeightSource(parseConfig(p.configJson, `preset ${name}`), name, seed);
}

/**
 * Seeded random weights for any config, generated per tensor on read (nothing
 * is kept). Each tensor has its own stream, seeded from its name, so reads in
 * any order or in parallel give the same values. Scales follow a trained
 * model's rough magnitudes so activations stay in a realistic range:
 * projections ~ N(0, 1/fan_in), embedding ~ N(0, 1), conv and aug_balance
 * nonzero, biases small, LayerNorm weights near 1.
 */
export function randomWeightSource(config: MetalaConfig, label: string, seed = 1): WeightSource {
  const specs = new Map<string, TensorSpec>();
  for (const s of expectedTensors(config)) if (s.name !== LM_HEAD || config.tieWordEmbeddings === false) specs.set(s.name, s);
  const tiedHead = !specs.has(LM_HEAD);
  const find = (name: string): TensorSpec => {
    const spec = specs.get(name === LM_HEAD && tiedHead ? EMBED : name);
    if (!spec) throw new MetalaError("weights", `${label}: no tensor "${name}"`);
    return spec;
  };
  return {
    config,
    tiedHead,
    label,
    storedBytes: 4 * parameterCount(config, tiedHead),
    has: (name) => specs.has(name),
    shape: (name) => find(name).shape,
    storedDType(name): StoredDType {
      find(name); // an unknown name is an error here too
      return "F32";
    },
    async read(name, dest) {
      const spec = find(name);
      const count = spec.shape.reduce((a, b) => a * b, 1);
      const out = dest ?? new Float32Array(count);
      if (out.length !== count) throw new RangeError(`${label}: tensor ${name}: destination holds ${out.length} values, the tensor ${count}`);
      const { std, mean } = scaleOf(spec);
      fillNormalish(out, hashName(spec.name) ^ Math.imul(seed, 0x9e3779b1), std, mean);
      return out;
    },
    async close() {},
  };
}

function scaleOf(spec: TensorSpec): { std: number; mean: number } {
  const n = spec.name;
  if (n === EMBED) return { std: 1, mean: 0 };
  if (n.endsWith("conv1d.weight")) return { std: 0.5, mean: 0 }; // fan_in 4 (one channel, kernel 4)
  if (n.endsWith("aug_balance")) return { std: 0.1, mean: 0 };
  if (/norm\.weight$/.test(n)) return { std: 0.02, mean: 1 };
  if (spec.shape.length === 1) return { std: 0.02, mean: 0 }; // biases
  return { std: 1 / Math.sqrt(spec.shape[1]), mean: 0 }; // [out, in] projections
}

/** FNV-1a over the name's UTF-16 units: a stable per-tensor seed. */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h;
}

let quantiles: Float32Array | undefined;

/**
 * 65536 quantiles of a standard normal, so that each 16-bit half of a random
 * word becomes one normal-looking value by lookup. Made from sorted
 * Box-Muller samples of a fixed stream, then standardized exactly.
 */
function normalQuantiles(): Float32Array {
  if (!quantiles) {
    const n = 65536;
    const samples = new Float64Array(n);
    let x = 0x2545f491;
    const uniform = () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return ((x >>> 0) + 0.5) / 4294967296;
    };
    for (let i = 0; i < n; i += 2) {
      const r = Math.sqrt(-2 * Math.log(uniform()));
      const a = 2 * Math.PI * uniform();
      samples[i] = r * Math.cos(a);
      samples[i + 1] = r * Math.sin(a);
    }
    samples.sort();
    let mean = 0;
    for (const v of samples) mean += v / n;
    let variance = 0;
    for (const v of samples) variance += (v - mean) ** 2 / n;
    const inv = 1 / Math.sqrt(variance);
    quantiles = Float32Array.from(samples, (v) => (v - mean) * inv);
  }
  return quantiles;
}

/** xorshift32 words, two normal-looking values per word by quantile lookup: a 1B-parameter model in a few seconds. */
function fillNormalish(out: Float32Array, seed: number, std: number, mean: number): void {
  const q = normalQuantiles();
  let x = seed | 0 || 0x6d2b79f5;
  const n = out.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = mean + std * q[x & 0xffff];
    out[i + 1] = mean + std * q[x >>> 16];
  }
  if (i < n) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = mean + std * q[x & 0xffff];
  }
}
