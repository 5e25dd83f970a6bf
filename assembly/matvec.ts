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

import { madd, hsum, hsumI32 } from "./simd";
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
  const nb = cols >> 5;
  const scales = q + (<usize>cols << 1);
  const sums = scales + (<usize>nb << 2);
  for (let b = r0; b < r1; b++) {
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
    const s = i32x4.add(i32x4.add(i32x4.add(q0, q1), i32x4.add(q2, q3)), i32x4.add(i32x4.add(q4, q5), i32x4.add(q6, q7)));
    const h0 = i16x8.narrow_i32x4_s(q0, q1), h1 = i16x8.narrow_i32x4_s(q2, q3);
    const h2 = i16x8.narrow_i32x4_s(q4, q5), h3 = i16x8.narrow_i32x4_s(q6, q7);
    if (ASC_FEATURE_RELAXED_SIMD) {
      const qb = q + (<usize>b << 5);
      v128.store(qb, i8x16.narrow_i16x8_s(h0, h1));
      v128.store(qb, i8x16.narrow_i16x8_s(h2, h3), 16);
    } else {
      const qb = q + (<usize>b << 6);
      v128.store(qb, h0);
      v128.store(qb, h1, 16);
      v128.store(qb, h2, 32);
      v128.store(qb, h3, 48);
    }
    store<f32>(scales + (<usize>b << 2), scale);
    store<f32>(sums + (<usize>b << 2), <f32>hsumI32(s));
  }
}

// Dot product of one Q8 block (32 int8 at wb) with the quantized input block.
// @ts-ignore: decorator
@inline function dotQ8Block(wb: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const w0 = v128.load(wb);
  const w1 = v128.load(wb, 16);
  const d0 = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w0), x0), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w0), x1));
  const d1 = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w1), x2), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w1), x3));
  return i32x4.add(d0, d1);
}

/** Layout Q8, input from quantizeInput; cols a multiple of 32. */
export function matVecQ8(w: usize, xq: usize, y: usize, cols: i32, accumulate: i32, r0: i32, r1: i32, tid: i32): void {
  const rb = rowBytes(FMT_Q8, cols);
  const nb = cols >> 5;
  const xs = xq + (<usize>cols << 1);
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const w0 = w + <usize>r * rb;
    const w1 = w0 + rb;
    const w2 = w1 + rb;
    const w3 = w2 + rb;
    const s0 = w0 + <usize>cols, s1 = w1 + <usize>cols, s2 = w2 + <usize>cols, s3 = w3 + <usize>cols;
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      let x0: v128, x1: v128, x2: v128, x3: v128;
      if (ASC_FEATURE_RELAXED_SIMD) {
        const xa = v128.load(xq + (<usize>b << 5));
        const xb = v128.load(xq + (<usize>b << 5), 16);
        x0 = i16x8.extend_low_i8x16_s(xa);
        x1 = i16x8.extend_high_i8x16_s(xa);
        x2 = i16x8.extend_low_i8x16_s(xb);
        x3 = i16x8.extend_high_i8x16_s(xb);
      } else {
        const xo = xq + (<usize>b << 6);
        x0 = v128.load(xo);
        x1 = v128.load(xo, 16);
        x2 = v128.load(xo, 32);
        x3 = v128.load(xo, 48);
      }
      const bo = <usize>b << 5;
      const so = <usize>b << 2;
      const sx = load<f32>(xs + so);
      a0 = madd(f32x4.convert_i32x4_s(dotQ8Block(w0 + bo, x0, x1, x2, x3)), f32x4.splat(load<f32>(s0 + so) * sx), a0);
      a1 = madd(f32x4.convert_i32x4_s(dotQ8Block(w1 + bo, x0, x1, x2, x3)), f32x4.splat(load<f32>(s1 + so) * sx), a1);
      a2 = madd(f32x4.convert_i32x4_s(dotQ8Block(w2 + bo, x0, x1, x2, x3)), f32x4.splat(load<f32>(s2 + so) * sx), a2);
      a3 = madd(f32x4.convert_i32x4_s(dotQ8Block(w3 + bo, x0, x1, x2, x3)), f32x4.splat(load<f32>(s3 + so) * sx), a3);
    }
    putRow(y, r, hsum(a0), accumulate);
    putRow(y, r + 1, hsum(a1), accumulate);
    putRow(y, r + 2, hsum(a2), accumulate);
    putRow(y, r + 3, hsum(a3), accumulate);
  }
  for (; r < r1; r++) {
    const wr = w + <usize>r * rb;
    const sr = wr + <usize>cols;
    let s: f32 = 0;
    for (let b = 0; b < nb; b++) {
      let acc: i32 = 0;
      for (let i = 0; i < 32; i++) {
        const xv: i32 = ASC_FEATURE_RELAXED_SIMD ? <i32>load<i8>(xq + (<usize>b << 5) + <usize>i) : <i32>load<i16>(xq + (<usize>b << 6) + (<usize>i << 1));
        acc += <i32>load<i8>(wr + (<usize>b << 5) + <usize>i) * xv;
      }
      s += <f32>acc * load<f32>(sr + (<usize>b << 2)) * load<f32>(xs + (<usize>b << 2));
    }
    putRow(y, r, s, accumulate);
  }
}

// Integer dot product of one Q4 block (16 bytes at wb) with the quantized
// input block. The relaxed build multiplies the unsigned nibbles (0..15, so
// the implementation-defined sign of the i7 operand never matters) and leaves
// the -8 offset to the caller; the SIMD128 build subtracts it first. The
// i16x8 form is used because Node 20's (experimental) i32x4 dot-add returned
// wrong sums in our tests.
// @ts-ignore: decorator
@inline function dotQ4Block(wb: usize, xb: usize): v128 {
  const nib = v128.load(wb);
  const lo = v128.and(nib, i8x16.splat(0x0f));
  const hi = i8x16.shr_u(nib, 4);
  if (ASC_FEATURE_RELAXED_SIMD) {
    const p = i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(xb), lo), i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(xb, 16), hi));
    return i32x4.extadd_pairwise_i16x8_s(p);
  }
  const l = i8x16.sub(lo, i8x16.splat(8));
  const h = i8x16.sub(hi, i8x16.splat(8));
  const d0 = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(l), v128.load(xb)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(l), v128.load(xb, 16)));
  const d1 = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(h), v128.load(xb, 32)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(h), v128.load(xb, 48)));
  return i32x4.add(d0, d1);
}

/** Layout Q4, input from quantizeInput; cols a multiple of 32. */
export function matVecQ4(w: usize, xq: usize, y: usize, cols: i32, accumulate: i32, r0: i32, r1: i32, tid: i32): void {
  const rb = rowBytes(FMT_Q4, cols);
  const nb = cols >> 5;
  const xs = xq + (<usize>cols << 1);
  const xsum = xs + (<usize>nb << 2);
  const xstride: i32 = ASC_FEATURE_RELAXED_SIMD ? 5 : 6;
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const w0 = w + <usize>r * rb;
    const w1 = w0 + rb;
    const w2 = w1 + rb;
    const w3 = w2 + rb;
    const half = <usize>cols >> 1;
    const s0 = w0 + half, s1 = w1 + half, s2 = w2 + half, s3 = w3 + half;
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    // relaxed: sum over blocks of scale * xsum, times -8 at the end
    let c0: f32 = 0, c1: f32 = 0, c2: f32 = 0, c3: f32 = 0;
    for (let b = 0; b < nb; b++) {
      const xb = xq + (<usize>b << xstride);
      const bo = <usize>b << 4;
      const so = <usize>b << 2;
      const sx = load<f32>(xs + so);
      const f0 = load<f32>(s0 + so) * sx, f1 = load<f32>(s1 + so) * sx, f2 = load<f32>(s2 + so) * sx, f3 = load<f32>(s3 + so) * sx;
      a0 = madd(f32x4.convert_i32x4_s(dotQ4Block(w0 + bo, xb)), f32x4.splat(f0), a0);
      a1 = madd(f32x4.convert_i32x4_s(dotQ4Block(w1 + bo, xb)), f32x4.splat(f1), a1);
      a2 = madd(f32x4.convert_i32x4_s(dotQ4Block(w2 + bo, xb)), f32x4.splat(f2), a2);
      a3 = madd(f32x4.convert_i32x4_s(dotQ4Block(w3 + bo, xb)), f32x4.splat(f3), a3);
      if (ASC_FEATURE_RELAXED_SIMD) {
        const sm = load<f32>(xsum + so);
        c0 += f0 * sm;
        c1 += f1 * sm;
        c2 += f2 * sm;
        c3 += f3 * sm;
      }
    }
    putRow(y, r, hsum(a0) - 8 * c0, accumulate);
    putRow(y, r + 1, hsum(a1) - 8 * c1, accumulate);
    putRow(y, r + 2, hsum(a2) - 8 * c2, accumulate);
    putRow(y, r + 3, hsum(a3) - 8 * c3, accumulate);
  }
  for (; r < r1; r++) {
    const wr = w + <usize>r * rb;
    const sr = wr + (<usize>cols >> 1);
    let s: f32 = 0;
    for (let b = 0; b < nb; b++) {
      let acc: i32 = 0;
      for (let i = 0; i < 32; i++) {
        const byte = <i32>load<u8>(wr + (<usize>b << 4) + <usize>(i & 15));
        const q = (i < 16 ? byte & 15 : byte >> 4) - 8;
        const xv: i32 = ASC_FEATURE_RELAXED_SIMD ? <i32>load<i8>(xq + (<usize>b << 5) + <usize>i) : <i32>load<i16>(xq + (<usize>b << 6) + (<usize>i << 1));
        acc += q * xv;
      }
      s += <f32>acc * load<f32>(sr + (<usize>b << 2)) * load<f32>(xs + (<usize>b << 2));
    }
    putRow(y, r, s, accumulate);
  }
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
      for (let c = 0; c < cols; c++)
        store<f32>(out + (<usize>c << 2), <f32>load<i8>(wr + <usize>c) * load<f32>(sr + (<usize>(c >> 5) << 2)));
    } else if (fmt == FMT_Q4) {
      const sr = wr + (<usize>cols >> 1);
      for (let c = 0; c < cols; c++) {
        const b = c >> 5;
        const i = c & 31;
        const byte = <i32>load<u8>(wr + (<usize>b << 4) + <usize>(i & 15));
        const q = (i < 16 ? byte & 15 : byte >> 4) - 8;
        store<f32>(out + (<usize>c << 2), <f32>q * load<f32>(sr + (<usize>b << 2)));
      }
    } else {
      memory.copy(out, wr, <usize>cols << 2);
    }
  }
}
