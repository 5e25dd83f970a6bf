// A small MetaLA model with seeded random weights, held in memory as a
// WeightSource: what the reference tests run on when no checkpoint is needed.
import { parseConfig } from "../../dist/model/config.js";
import { EMBED, LM_HEAD, expectedTensors } from "../../dist/model/names.js";

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1). */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Float32Array of n values uniform in [-scale, scale). */
export function uniform(rand, n, scale) {
  return Float32Array.from({ length: n }, () => (2 * rand() - 1) * scale);
}

/**
 * Builds the WeightSource. `config` is a config.json object (official field
 * names). Linear weights are uniform with scale 1/sqrt(fan_in) so that the
 * activations stay O(1); `kGateScale` multiplies k_gate to make decays strong
 * (k_gate outputs of -480 give gk = logsigmoid(-480)/16 = -30).
 * `tied: false` adds an lm_head.weight.
 */
export function randomModel(config, { seed = 1, tied = true, kGateScale = 1 } = {}) {
  const c = parseConfig({ model_type: "metala", ...config }, "random model");
  const rand = seededRandom(seed);
  const tensors = new Map();
  for (const spec of expectedTensors(c)) {
    if (spec.name === LM_HEAD && tied) continue;
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const fanIn = spec.shape.length === 2 ? spec.shape[1] : spec.name.endsWith("conv1d.weight") ? 4 : 1;
    let scale = 1 / Math.sqrt(fanIn);
    if (spec.name === EMBED || spec.name === LM_HEAD) scale = 1;
    if (spec.name.endsWith("k_gate.weight")) scale *= kGateScale;
    if (spec.name.endsWith("aug_balance")) scale = 1;
    const data = uniform(rand, n, scale);
    if (spec.name.endsWith("norm.weight")) data.forEach((x, i) => (data[i] = 1 + 0.5 * x)); // LayerNorm gains near 1
    tensors.set(spec.name, { shape: spec.shape, data });
  }
  const get = (name) => {
    const t = tensors.get(name);
    if (!t) throw new Error(`random model has no tensor ${name}`);
    return t;
  };
  return {
    config: c,
    tiedHead: tied,
    label: `random model seed ${seed}`,
    has: (name) => tensors.has(name),
    shape: (name) => get(name).shape,
    storedDType: () => "F32",
    async read(name, dest) {
      const data = get(name).data;
      if (!dest) return data.slice();
      dest.set(data);
      return dest;
    },
    storedBytes: [...tensors.values()].reduce((a, t) => a + 4 * t.data.length, 0),
    async close() {},
  };
}
