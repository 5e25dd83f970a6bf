// Conversion of f32 weight rows into the storage layouts of formats.ts, run
// once at load, in parallel over rows: the f32 tensor is staged in linear
// memory and written, converted, to its place among the weights.

import { rowBytes, quadBlock, FMT_F16, FMT_Q8 } from "./formats";

// A q4 level in [-8, 7] as a 4-bit two's complement nibble.
// @ts-ignore: decorator
@inline function level(x: f32): i32 {
  return min(7, max(-8, <i32>nearest(x))) & 15;
}

// f32 -> f16 bits, round to nearest even; overflow to infinity. Values
// whose f16 would be subnormal (below 2^-14 after rounding) are stored as
// zero of their sign: decoded, they would be f32 subnormals, and on x86 every
// multiply with a subnormal operand takes a microcode assist (~30x its cost).
// Random weights of the 380m preset (std 1/32) have 0.16% of them, trained
// checkpoints about as many: keeping them made f16 decode 25% slower (0.62
// against 0.83 of the roofline, two threads, same process), and prefill paid
// the same in its f32 panels. What is lost is below f16's own resolution
// next to the weights it is summed with.
function f16Bits(x: f32): u16 {
  const bits = reinterpret<u32>(x);
  const sign = (bits >> 16) & 0x8000;
  const exp = <i32>((bits >> 23) & 0xff);
  let mant = bits & 0x7fffff;
  if (exp == 0xff) return <u16>(sign | 0x7c00 | (mant ? 0x200 : 0));
  const e = exp - 127 + 15;
  if (e >= 31) return <u16>(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return <u16>sign;
    mant |= 0x800000;
    const shift = <u32>(14 - e);
    let half = mant >> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid: u32 = 1 << (shift - 1);
    if (rest > mid || (rest == mid && (half & 1))) half++;
    return <u16>(sign | (half == 0x400 ? half : 0)); // rounded up to the least normal, or flushed
  }
  let h = (<u32>e << 10) | (mant >> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++; // a carry into the exponent is still the right rounding
  return <u16>(sign | h);
}

/**
 * Index of the first of n f32 at src that f16 storage cannot hold (not
 * finite, or |x| >= 65520, which rounds to infinity), or -1: the load
 * refuses such a tensor at --dtype f16 (f16Bits would store infinity, and
 * the decode's exponent rebase reads that as 65536 or more). n a multiple of 4.
 */
export function firstNonF16(src: usize, n: i32): i32 {
  const magnitude = i32x4.splat(0x7fffffff), limit = i32x4.splat(0x477fefff); // the bits of 65520 - 1 ulp
  const end = src + (<usize>n << 2);
  for (let p = src; p < end; p += 16) {
    if (v128.any_true(i32x4.gt_s(v128.and(v128.load(p), magnitude), limit))) {
      for (let i = 0; i < 4; i++) if (!(abs(load<f32>(p + (<usize>i << 2))) < 65520)) return <i32>((p - src) >> 2) + i;
    }
  }
  return -1;
}

// Slot of weight j of a group of 8 in layout F16: w0 w4 w1 w5 w2 w6 w3 w7.
// @ts-ignore: decorator
@inline function f16Slot(j: i32): i32 {
  return j < 4 ? 2 * j : 2 * (j - 4) + 1;
}

/**
 * Writes rows [r0, r1) of the f32 matrix at src ([rows, cols]) in layout
 * `fmt` to dst (dst is where row 0 goes). cols: a multiple of 8 for F16, of
 * 32 for Q8 and Q4. Q8/Q4 rows go to their place in their quad, so any
 * split of the rows between calls (threads) is fine.
 */
export function quantizeRows(fmt: i32, src: usize, dst: usize, cols: i32, r0: i32, r1: i32, tid: i32): void {
  const nb = cols >> 5;
  for (let r = r0; r < r1; r++) {
    const s = src + <usize>r * (<usize>cols << 2);
    if (fmt == FMT_F16) {
      const o = dst + <usize>r * rowBytes(fmt, cols);
      for (let c = 0; c < cols; c++) store<u16>(o + (<usize>((c & ~7) + f16Slot(c & 7)) << 1), f16Bits(load<f32>(s + (<usize>c << 2))));
      continue;
    }
    const lane = <usize>(r & 3) << 2;
    for (let b = 0; b < nb; b++) {
      const sb = s + (<usize>b << 7);
      const qb = quadBlock(fmt, dst, cols, r, b);
      const q = qb + 16 + lane;
      if (fmt == FMT_Q8) {
        let m: f32 = 0;
        for (let i = 0; i < 32; i++) m = max(m, abs(load<f32>(sb + (<usize>i << 2))));
        const scale: f32 = m / 127;
        const inv: f32 = scale > 0 ? <f32>1 / scale : 0;
        for (let i = 0; i < 32; i++) {
          const v = <i32>nearest(load<f32>(sb + (<usize>i << 2)) * inv);
          const level = min(127, max(-127, v));
          store<u8>(q + (<usize>(i >> 2) << 4) + <usize>(i & 3), <u8>(i & 1 ? level : level + 128)); // formats.ts: even columns biased
        }
        store<f32>(qb + lane, scale);
      } else {
        // the value of largest magnitude maps to -8, so all 16 levels are used
        let m: f32 = 0;
        for (let i = 0; i < 32; i++) {
          const v = load<f32>(sb + (<usize>i << 2));
          if (abs(v) > abs(m)) m = v;
        }
        const scale: f32 = m / -8;
        const inv: f32 = scale != 0 ? <f32>1 / scale : 0;
        for (let k = 0; k < 4; k++)
          for (let j = 0; j < 4; j++) {
            const lo = level(load<f32>(sb + (<usize>(8 * k + j) << 2)) * inv);
            const hi = level(load<f32>(sb + (<usize>(8 * k + 4 + j) << 2)) * inv);
            store<u8>(q + (<usize>k << 4) + <usize>j, <u8>(lo | (hi << 4)));
          }
        store<f32>(qb + lane, scale);
      }
    }
  }
}
