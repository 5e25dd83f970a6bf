/**
 * Weight quantization for the GPU engine (shaders/weights-q8.wgsl and
 * weights-q4.wgsl): symmetric, per group of 32 consecutive elements of a
 * row. q8 stores round(w / max * 127) as signed bytes and the scale max |w|
 * (w = q / 127 * scale); q4 stores round(w / max * 7) + 8 as nibbles and the
 * scale max |w| / 7 (w = q * scale). K (the row length) must be a multiple of 4.
 */
export const QUANT_GROUP = 32;

export type QuantType = "q8" | "q4";

export interface Quantized {
  /** Packed values, whole u32 words (padded with zeros to a multiple of 2 words). */
  data: Uint32Array;
  /** [rows, ceil(K / 32)] scales. */
  scales: Float32Array;
}

export function quantize(w: Float32Array, rows: number, K: number, type: QuantType): Quantized {
  const groups = Math.ceil(K / QUANT_GROUP);
  const scales = new Float32Array(rows * groups);
  const perWord = type === "q8" ? 4 : 8;
  const data = new Uint32Array(Math.ceil(Math.ceil((rows * K) / perWord) / 2) * 2);
  const qmax = type === "q8" ? 127 : 7;
  for (let r = 0; r < rows; r++)
    for (let g = 0; g < groups; g++) {
      const lo = r * K + g * QUANT_GROUP, hi = r * K + Math.min(K, (g + 1) * QUANT_GROUP);
      let amax = 0;
      for (let i = lo; i < hi; i++) amax = Math.max(amax, Math.abs(w[i]));
      // q8 folds the 1/127 into unpack4x8snorm, q4 multiplies the integer by max/7
      scales[r * groups + g] = type === "q8" ? amax : amax / qmax;
      const inv = amax > 0 ? qmax / amax : 0;
      for (let i = lo; i < hi; i++) {
        const q = Math.max(-qmax, Math.min(qmax, Math.round(w[i] * inv)));
        if (type === "q8") data[i >> 2] |= (q & 0xff) << ((i & 3) * 8);
        else data[i >> 3] |= (q + 8) << ((i & 7) * 4);
      }
    }
  return { data, scales };
}

/** The values the shaders reconstruct (f32 arithmetic as on the GPU): for references in tests. */
export function dequantize(qz: Quantized, rows: number, K: number, type: QuantType): Float32Array {
  const groups = Math.ceil(K / QUANT_GROUP);
  const out = new Float32Array(rows * K);
  for (let i = 0; i < rows * K; i++) {
    const r = Math.floor(i / K);
    const s = qz.scales[r * groups + Math.floor((i - r * K) / QUANT_GROUP)];
    if (type === "q8") {
      const b = (qz.data[i >> 2] >>> ((i & 3) * 8)) & 0xff;
      const q = b >= 128 ? b - 256 : b;
      out[i] = Math.fround(Math.max(Math.fround(q / 127), -1) * s);
    } else {
      out[i] = Math.fround((((qz.data[i >> 3] >>> ((i & 7) * 4)) & 15) - 8) * s);
    }
  }
  return out;
}
