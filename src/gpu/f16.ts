import { f16RangeError } from "../model/dtype.js";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE binary16 bits of x, rounded to nearest even (overflow to infinity, underflow through subnormals to zero). */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // a carry out of the mantissa correctly bumps the exponent (to infinity at the top)
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

/**
 * f16 bits of every element, padded to a multiple of 4 elements (the 8-byte
 * reads of weights-f16.wgsl). A value f16 cannot hold (it would round to
 * infinity, or is not finite) throws f16RangeError naming `where`.
 */
export function toF16(src: Float32Array, where: string): Uint16Array {
  const out = new Uint16Array(Math.ceil(src.length / 4) * 4);
  for (let i = 0; i < src.length; i++) {
    const h = f32ToF16Bits(src[i]);
    if ((h & 0x7c00) === 0x7c00) throw f16RangeError(where, src[i], i);
    out[i] = h;
  }
  return out;
}
