/**
 * Writers of the weight storage layouts of assembly/formats.ts, run on load,
 * one tensor at a time, straight into the engine's memory: f32 rows become
 * f16, q8 (int8 blocks of 32 + f32 scale) or q4 (4-bit blocks of 32 + f32
 * scale). The kernels read exactly these bytes; change both together.
 */
import { FMT, type WeightDType } from "./kernels.js";

export const BLOCK = 32;

/** Bytes of one stored row of `cols` weights (assembly/formats.ts rowBytes). */
export function rowBytes(dtype: WeightDType, cols: number): number {
  switch (dtype) {
    case "f32":
      return cols * 4;
    case "f16":
      return cols * 2;
    case "q8":
      return cols + cols / 8;
    case "q4":
      return cols / 2 + cols / 8;
  }
}

/** Bytes of the quantized-input buffer for `cols` inputs (assembly/formats.ts inputBytes). */
export function inputBytes(cols: number): number {
  return cols * 2 + cols / 4;
}

export function fmtCode(dtype: WeightDType): number {
  return FMT[dtype];
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE f32 -> f16 bits, round to nearest even; overflow to infinity, underflow through subnormals to zero. */
export function f32ToF16(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rest > mid || (rest === mid && half & 1)) half++;
    return sign | half;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // a carry into the exponent is still the right rounding
  return sign | h;
}

// Position of weight i of a group of 8 in layout F16: w0 w4 w1 w5 w2 w6 w3 w7.
const F16_SLOT = [0, 2, 4, 6, 1, 3, 5, 7];

/**
 * Writes `rows` rows of `cols` f32 weights (row-major in src) in layout
 * `dtype` to `buf` at byte `offset`.
 */
export function writeRows(dtype: WeightDType, src: Float32Array, rows: number, cols: number, buf: ArrayBufferLike, offset: number): void {
  const rb = rowBytes(dtype, cols);
  if (dtype === "f32") {
    new Float32Array(buf, offset, rows * cols).set(src.subarray(0, rows * cols));
    return;
  }
  if (dtype === "f16") {
    const out = new Uint16Array(buf, offset, rows * cols);
    for (let i = 0; i < rows * cols; i += 8) for (let j = 0; j < 8; j++) out[i + F16_SLOT[j]] = f32ToF16(src[i + j]);
    return;
  }
  const nb = cols / BLOCK;
  for (let r = 0; r < rows; r++) {
    const row = src.subarray(r * cols, (r + 1) * cols);
    const base = offset + r * rb;
    if (dtype === "q8") {
      const q = new Int8Array(buf, base, cols);
      const scales = new Float32Array(buf, base + cols, nb);
      for (let b = 0; b < nb; b++) {
        let m = 0;
        for (let i = b * BLOCK; i < (b + 1) * BLOCK; i++) m = Math.max(m, Math.abs(row[i]));
        const scale = Math.fround(m / 127);
        const inv = scale > 0 ? 1 / scale : 0;
        for (let i = b * BLOCK; i < (b + 1) * BLOCK; i++) q[i] = Math.max(-127, Math.min(127, Math.round(row[i] * inv)));
        scales[b] = scale;
      }
    } else {
      const q = new Uint8Array(buf, base, cols / 2);
      const scales = new Float32Array(buf, base + cols / 2, nb);
      for (let b = 0; b < nb; b++) {
        // the value of largest magnitude maps to -8, so all 16 levels are used
        let m = 0;
        for (let i = b * BLOCK; i < (b + 1) * BLOCK; i++) if (Math.abs(row[i]) > Math.abs(m)) m = row[i];
        const scale = Math.fround(m / -8);
        const inv = scale !== 0 ? 1 / scale : 0;
        const level = (x: number) => Math.max(-8, Math.min(7, Math.round(x * inv))) + 8;
        for (let j = 0; j < 16; j++) q[b * 16 + j] = level(row[b * BLOCK + j]) | (level(row[b * BLOCK + 16 + j]) << 4);
        scales[b] = scale;
      }
    }
  }
}
