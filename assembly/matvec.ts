// Matrix-vector products y = W x for one token (decode): the hot loop of the
// whole runtime. Every weight byte is read exactly once per token, so these
// are bound by memory bandwidth; the kernels walk four rows at once so that
// each load of x serves four rows, and keep enough independent accumulators
// that the loads, not the adds, set the pace.
//
// Signature convention of the parallel kernels: (operands..., r0, r1, tid);
// the thread pool gives each thread its own row range [r0, r1).
// `accumulate` != 0 adds the product to y (residual connections) instead of
// overwriting y.

import { madd, hsum } from "./simd";
import { rowBytes } from "./formats";
import { FMT_F16, FMT_Q8, FMT_Q4 } from "./formats";

// @ts-ignore: decorator
@inline function putRow(y: usize, r: i32, v: f32, accumulate: i32): void {
  const p = y + (<usize>r << 2);
  store<f32>(p, accumulate ? load<f32>(p) + v : v);
}

export function matVecF32(w: usize, x: usize, y: usize, cols: i32, accumulate: i32, r0: i32, r1: i32, tid: i32): void {
  const rb = <usize>cols << 2;
  const vec = cols & ~3;
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const w0 = w + <usize>r * rb;
    const w1 = w0 + rb;
    const w2 = w1 + rb;
    const w3 = w2 + rb;
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    for (let c = 0; c < vec; c += 4) {
      const o = <usize>c << 2;
      const xv = v128.load(x + o);
      a0 = madd(v128.load(w0 + o), xv, a0);
      a1 = madd(v128.load(w1 + o), xv, a1);
      a2 = madd(v128.load(w2 + o), xv, a2);
      a3 = madd(v128.load(w3 + o), xv, a3);
    }
    let s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
    for (let c = vec; c < cols; c++) {
      const o = <usize>c << 2;
      const xs = load<f32>(x + o);
      s0 += load<f32>(w0 + o) * xs;
      s1 += load<f32>(w1 + o) * xs;
      s2 += load<f32>(w2 + o) * xs;
      s3 += load<f32>(w3 + o) * xs;
    }
    putRow(y, r, s0, accumulate);
    putRow(y, r + 1, s1, accumulate);
    putRow(y, r + 2, s2, accumulate);
    putRow(y, r + 3, s3, accumulate);
  }
  for (; r < r1; r++) {
    const wr = w + <usize>r * rb;
    let a = f32x4.splat(0);
    for (let c = 0; c < vec; c += 4) a = madd(v128.load(wr + (<usize>c << 2)), v128.load(x + (<usize>c << 2)), a);
    let s = hsum(a);
    for (let c = vec; c < cols; c++) s += load<f32>(wr + (<usize>c << 2)) * load<f32>(x + (<usize>c << 2));
    putRow(y, r, s, accumulate);
  }
}

// f16 -> f32 for the two halves of four 32-bit lanes each holding two f16
// (layout F16): the f16 sits in the top 16 bits, an arithmetic shift by 3
// moves exponent and mantissa to f32's positions, the mask drops the copies
// of the sign, and 2^112 rebases the exponent (also right for subnormals).
// @ts-ignore: decorator
@inline export function decodeF16Top(t: v128): v128 {
  return f32x4.mul(v128.and(i32x4.shr_s(t, 3), i32x4.splat(0x8fffe000)), f32x4.splat(5.192296858534828e33));
}

// @ts-ignore: decorator
@inline function dotF16Group(wv: v128, xlo: v128, xhi: v128, acc: v128): v128 {
  const hi = decodeF16Top(v128.and(wv, i32x4.splat(0xffff0000)));
  const lo = decodeF16Top(i32x4.shl(wv, 16));
  return madd(hi, xhi, madd(lo, xlo, acc));
}

/** Layout F16; cols must be a multiple of 8. */
export function matVecF16(w: usize, x: usize, y: usize, cols: i32, accumulate: i32, r0: i32, r1: i32, tid: i32): void {
  const rb = <usize>cols << 1;
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const w0 = w + <usize>r * rb;
    const w1 = w0 + rb;
    const w2 = w1 + rb;
    const w3 = w2 + rb;
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    for (let c = 0; c < cols; c += 8) {
      const xo = x + (<usize>c << 2);
      const xlo = v128.load(xo);
      const xhi = v128.load(xo, 16);
      const o = <usize>c << 1;
      a0 = dotF16Group(v128.load(w0 + o), xlo, xhi, a0);
      a1 = dotF16Group(v128.load(w1 + o), xlo, xhi, a1);
      a2 = dotF16Group(v128.load(w2 + o), xlo, xhi, a2);
      a3 = dotF16Group(v128.load(w3 + o), xlo, xhi, a3);
    }
    putRow(y, r, hsum(a0), accumulate);
    putRow(y, r + 1, hsum(a1), accumulate);
    putRow(y, r + 2, hsum(a2), accumulate);
    putRow(y, r + 3, hsum(a3), accumulate);
  }
  for (; r < r1; r++) {
    const wr = w + <usize>r * rb;
    let a = f32x4.splat(0);
    for (let c = 0; c < cols; c += 8) {
      const xo = x + (<usize>c << 2);
      a = dotF16Group(v128.load(wr + (<usize>c << 1)), v128.load(xo), v128.load(xo, 16), a);
    }
    putRow(y, r, hsum(a), accumulate);
  }
}

/**
 * Quantizes x (cols f32, a multiple of 32) per block of 32 into `q` (layout in
 * formats.ts) for the Q8 and Q4 products, blocks [r0, r1).
 */
export function quantizeInput(x: usize, q: usize, cols: i32, r0: i32, r1: i32, tid: i32): void {
  for (let b = r0; b < r1; b++) quantizeBlock(x, q, cols, b);
}

// @ts-ignore: decorator
@inline function quantizeBlock(x: usize, q: usize, cols: i32, b: i32): void {
  const scales = q + (<usize>cols << 1);
  const xb = x + (<usize>b << 7);
  let m = f32x4.splat(0);
  for (let i = 0; i < 8; i++) m = f32x4.max(m, f32x4.abs(v128.load(xb + (<usize>i << 4))));
  const mx = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  const scale: f32 = mx / 127;
  const inv = f32x4.splat(scale > 0 ? <f32>1 / scale : 0);
  const q0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb), inv)));
  const q1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb, 16), inv)));
  const q2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb, 32), inv)));
  const q3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb, 48), inv)));
  const q4 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb, 64), inv)));
  const q5 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb, 80), inv)));
  const q6 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb, 96), inv)));
  const q7 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb, 112), inv)));
  const h0 = i16x8.narrow_i32x4_s(q0, q1), h1 = i16x8.narrow_i32x4_s(q2, q3);
  const h2 = i16x8.narrow_i32x4_s(q4, q5), h3 = i16x8.narrow_i32x4_s(q6, q7);
  const qb = q + (<usize>b << 6);
  v128.store(qb, h0);
  v128.store(qb, h1, 16);
  v128.store(qb, h2, 32);
  v128.store(qb, h3, 48);
  store<f32>(scales + (<usize>b << 2), scale);
}

// The integer products use i32x4.dot_i16x8_s (eight multiply-adds per
// instruction, the densest SIMD128 has) on the input as i16.

// Dot product of one Q8 block (32 int8 at wb) with the quantized input block (i16 x0..x3).
// @ts-ignore: decorator
@inline function dotQ8Block(wb: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const w0 = v128.load(wb);
  const w1 = v128.load(wb, 16);
  const d0 = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w0), x0), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w0), x1));
  const d1 = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w1), x2), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w1), x3));
  return i32x4.add(d0, d1);
}

// Q4 block (16 bytes at wb, layout Q4 of formats.ts) . input block: each
// 16-bit lane holds w[j], w[8+j], w[16+j], w[24+j] from the low bits up, so
// one shift or one mask per group of eight moves each nibble to the top four
// bits of its lane, in input order: the lane holds 4096 * w, cheaper than
// sign-extending it in place (two shifts); block sums stay below 2^31
// (32 * 4096 * 8 * 127), and the factor is divided out once per row.
// @ts-ignore: decorator
@inline function dotQ4Block(wb: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const v = v128.load(wb);
  const top = i16x8.splat(<i16>0xf000);
  const a = i16x8.shl(v, 12);
  const b = v128.and(i16x8.shl(v, 8), top);
  const c = v128.and(i16x8.shl(v, 4), top);
  const d = v128.and(v, top);
  return i32x4.add(i32x4.add(i32x4.dot_i16x8_s(a, x0), i32x4.dot_i16x8_s(b, x1)), i32x4.add(i32x4.dot_i16x8_s(c, x2), i32x4.dot_i16x8_s(d, x3)));
}

/** Weight i (0..31) of the Q4 block at wb. */
// @ts-ignore: decorator
@inline export function q4At(wb: usize, i: i32): i32 {
  const byte = <i32>load<u8>(wb + <usize>(((i & 7) << 1) + ((i >> 4) & 1)));
  const nib = (i >> 3) & 1 ? byte >> 4 : byte & 15;
  return (nib << 28) >> 28;
}

// [sum of lanes of d0, of d1, of d2, of d3]: four rows' block sums in one vector.
// @ts-ignore: decorator
@inline function rowSums4(d0: v128, d1: v128, d2: v128, d3: v128): v128 {
  const t0 = i32x4.add(i32x4.shuffle(d0, d1, 0, 4, 1, 5), i32x4.shuffle(d0, d1, 2, 6, 3, 7));
  const t1 = i32x4.add(i32x4.shuffle(d2, d3, 0, 4, 1, 5), i32x4.shuffle(d2, d3, 2, 6, 3, 7));
  return i32x4.add(i32x4.shuffle(t0, t1, 0, 1, 4, 5), i32x4.shuffle(t0, t1, 2, 3, 6, 7));
}

// The four rows' scales of block b (scale arrays at s0..s3), as one vector.
// @ts-ignore: decorator
@inline function scales4(s0: usize, s1: usize, s2: usize, s3: usize, so: usize): v128 {
  let v = v128.load32_zero(s0 + so);
  v = v128.load32_lane(s1 + so, v, 1);
  v = v128.load32_lane(s2 + so, v, 2);
  return v128.load32_lane(s3 + so, v, 3);
}

// y[r..r+3] (+)= the four lanes of v.
// @ts-ignore: decorator
@inline function putRows4(y: usize, r: i32, v: v128, accumulate: i32): void {
  const p = y + (<usize>r << 2);
  v128.store(p, accumulate ? f32x4.add(v128.load(p), v) : v);
}

// Block sums of four rows (weights at w0 + rb * i, block offset bo) with the
// input block x0..x3.
// @ts-ignore: decorator
@inline function blockSums4(q8: bool, w0: usize, rb: usize, bo: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const w1 = w0 + rb, w2 = w1 + rb, w3 = w2 + rb;
  return q8
    ? rowSums4(dotQ8Block(w0 + bo, x0, x1, x2, x3), dotQ8Block(w1 + bo, x0, x1, x2, x3), dotQ8Block(w2 + bo, x0, x1, x2, x3), dotQ8Block(w3 + bo, x0, x1, x2, x3))
    : rowSums4(dotQ4Block(w0 + bo, x0, x1, x2, x3), dotQ4Block(w1 + bo, x0, x1, x2, x3), dotQ4Block(w2 + bo, x0, x1, x2, x3), dotQ4Block(w3 + bo, x0, x1, x2, x3));
}

/**
 * Layouts Q8 (q8 = 1) and Q4 (q8 = 0), input from quantizeInput; cols a
 * multiple of 32. Four rows at a time: their integer block sums are reduced
 * into one vector and scaled with one vector multiply, so the per-block
 * float work is shared by the four rows.
 *
 * Read-ahead: the dequantising arithmetic is long enough that the core's
 * own loads alone keep too few cache misses in flight (Q4 measured at
 * a third of the f32 kernel's bytes per second). So for Q4, while
 * computing one group of eight rows, the loop also touches every cache line
 * of the next group once, a few lines per block; those loads miss early and
 * the group's own loads then hit the cache.
 */
// @ts-ignore: decorator
@inline function matVecQuant(q8: bool, w: usize, xq: usize, y: usize, cols: i32, accumulate: i32, r0: i32, r1: i32): void {
  const rb = rowBytes(q8 ? FMT_Q8 : FMT_Q4, cols);
  const nb = cols >> 5;
  const xs = xq + (<usize>cols << 1);
  const sOff: usize = q8 ? <usize>cols : <usize>cols >> 1;
  const bShift: usize = q8 ? 5 : 4;
  const unit = f32x4.splat(q8 ? <f32>1 : <f32>1 / 4096);
  const group = rb << 3;
  // lines of the next group to touch per block: ceil(group / 64 / nb); Q8
  // measured no faster with it (its arithmetic per byte is half of Q4's)
  const touches = q8 ? 0 : <i32>((group + (<usize>nb << 6) - 1) / (<usize>nb << 6));
  const end = w + <usize>r1 * rb;
  let sink = i32x4.splat(0);
  let r = r0;
  for (; r + 8 <= r1; r += 8) {
    const w0 = w + <usize>r * rb;
    const w4 = w0 + (rb << 2);
    let ahead = w0 + group;
    // past the last row there is nothing to fetch: touch the current group instead
    const aheadEnd = min(w0 + (group << 1), end);
    let acc = f32x4.splat(0);
    let acc2 = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      for (let t = 0; t < touches; t++) {
        sink = v128.xor(sink, v128.load32_zero(ahead < aheadEnd ? ahead : w0));
        ahead += 64;
      }
      const xo = xq + (<usize>b << 6);
      const x0 = v128.load(xo);
      const x1 = v128.load(xo, 16);
      const x2 = v128.load(xo, 32);
      const x3 = v128.load(xo, 48);
      const bo = <usize>b << bShift;
      const so = <usize>b << 2;
      const sx = v128.load32_splat(xs + so);
      const d = blockSums4(q8, w0, rb, bo, x0, x1, x2, x3);
      acc = madd(f32x4.convert_i32x4_s(d), f32x4.mul(scales4(w0 + sOff, w0 + rb + sOff, w0 + 2 * rb + sOff, w0 + 3 * rb + sOff, so), sx), acc);
      const e = blockSums4(q8, w4, rb, bo, x0, x1, x2, x3);
      acc2 = madd(f32x4.convert_i32x4_s(e), f32x4.mul(scales4(w4 + sOff, w4 + rb + sOff, w4 + 2 * rb + sOff, w4 + 3 * rb + sOff, so), sx), acc2);
    }
    putRows4(y, r, f32x4.mul(acc, unit), accumulate);
    putRows4(y, r + 4, f32x4.mul(acc2, unit), accumulate);
  }
  for (; r + 4 <= r1; r += 4) {
    const w0 = w + <usize>r * rb;
    let acc = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const xo = xq + (<usize>b << 6);
      const x0 = v128.load(xo);
      const x1 = v128.load(xo, 16);
      const x2 = v128.load(xo, 32);
      const x3 = v128.load(xo, 48);
      const bo = <usize>b << bShift;
      const so = <usize>b << 2;
      const d = blockSums4(q8, w0, rb, bo, x0, x1, x2, x3);
      const sc = f32x4.mul(scales4(w0 + sOff, w0 + rb + sOff, w0 + 2 * rb + sOff, w0 + 3 * rb + sOff, so), v128.load32_splat(xs + so));
      acc = madd(f32x4.convert_i32x4_s(d), sc, acc);
    }
    putRows4(y, r, f32x4.mul(acc, unit), accumulate);
  }
  for (; r < r1; r++) {
    const wr = w + <usize>r * rb;
    let s: f32 = 0;
    for (let b = 0; b < nb; b++) {
      let acc: i32 = 0;
      for (let i = 0; i < 32; i++) {
        const wv = q8 ? <i32>load<i8>(wr + (<usize>b << 5) + <usize>i) : q4At(wr + (<usize>b << 4), i);
        acc += wv * <i32>load<i16>(xq + (<usize>b << 6) + (<usize>i << 1));
      }
      s += <f32>acc * load<f32>(wr + sOff + (<usize>b << 2)) * load<f32>(xs + (<usize>b << 2));
    }
    putRow(y, r, s, accumulate);
  }
  // Keeps the read-ahead loads alive: they are or-ed into y[r0] masked with
  // r0 >> 31, which is zero (r0 >= 0) but unknown to the compilers.
  if (r0 < r1) {
    const p = y + (<usize>r0 << 2);
    store<i32>(p, load<i32>(p) | (i32x4.extract_lane(sink, 0) & (r0 >> 31)));
  }
}

/** Layout Q8, input from quantizeInput; cols a multiple of 32; y 16-byte aligned. */
export function matVecQ8(w: usize, xq: usize, y: usize, cols: i32, accumulate: i32, r0: i32, r1: i32, tid: i32): void {
  matVecQuant(true, w, xq, y, cols, accumulate, r0, r1);
}

/** Layout Q4, input from quantizeInput; cols a multiple of 32; y 16-byte aligned. */
export function matVecQ4(w: usize, xq: usize, y: usize, cols: i32, accumulate: i32, r0: i32, r1: i32, tid: i32): void {
  matVecQuant(false, w, xq, y, cols, accumulate, r0, r1);
}

/** Expands rows [r0, r1) of a stored matrix (any layout) into f32 at dst, row after row. */
export function dequantizeRows(fmt: i32, w: usize, cols: i32, r0: i32, r1: i32, dst: usize): void {
  const rb = rowBytes(fmt, cols);
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * rb;
    const out = dst + <usize>(r - r0) * (<usize>cols << 2);
    if (fmt == FMT_F16) {
      for (let c = 0; c < cols; c += 8) {
        const wv = v128.load(wr + (<usize>c << 1));
        v128.store(out + (<usize>c << 2), decodeF16Top(i32x4.shl(wv, 16)));
        v128.store(out + (<usize>c << 2), decodeF16Top(v128.and(wv, i32x4.splat(0xffff0000))), 16);
      }
    } else if (fmt == FMT_Q8) {
      const sr = wr + <usize>cols;
      for (let b = 0; b < (cols >> 5); b++) {
        const sc = v128.load32_splat(sr + (<usize>b << 2));
        const ob = out + (<usize>b << 7);
        for (let h = 0; h < 2; h++) {
          const v = v128.load(wr + (<usize>b << 5) + (<usize>h << 4));
          const lo = i16x8.extend_low_i8x16_s(v);
          const hi = i16x8.extend_high_i8x16_s(v);
          const o = ob + (<usize>h << 6);
          v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)), sc));
          v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), sc), 16);
          v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), sc), 32);
          v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), sc), 48);
        }
      }
    } else if (fmt == FMT_Q4) {
      const sr = wr + (<usize>cols >> 1);
      for (let b = 0; b < (cols >> 5); b++) {
        const sc = v128.load32_splat(sr + (<usize>b << 2));
        const v = v128.load(wr + (<usize>b << 4));
        const ob = out + (<usize>b << 7);
        // the four groups of eight weights, as in dotQ4Block
        for (let g = 0; g < 4; g++) {
          const q = i16x8.shr_s(i16x8.shl(v, <i32>(12 - 4 * g)), 12);
          v128.store(ob + (<usize>g << 5), f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(q)), sc));
          v128.store(ob + (<usize>g << 5), f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(q)), sc), 16);
        }
      }
    } else {
      memory.copy(out, wr, <usize>cols << 2);
    }
  }
}
