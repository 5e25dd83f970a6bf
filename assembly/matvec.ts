// Matrix-vector products y = W x for one token (decode): the hot loop of the
// whole runtime. Every weight byte is read exactly once per token, so these
// are bound by memory bandwidth; the F32/F16 kernels walk eight (F32) or
// four (F16) rows at once so that each load of x serves them all, with an
// accumulator per row so that the loads, not the adds, set the pace. The
// rows taken together are row i of each eighth (quarter) of the range, so
// that each of the streams walks its part front to back and the hardware
// prefetcher sees a few long sequential streams rather than 4 KB rows
// (measured, two threads, f32 decode's mat-vecs against the read probe:
// 0.80-0.92 with eight adjacent rows, 0.90-0.99 this way). The Q8/Q4 kernels are
// in matvec-quant.ts.
//
// Signature convention of the parallel kernels: (operands..., r0, r1, tid);
// the thread pool hands out row ranges [r0, r1) (tiles), several per thread.
// `accumulate` != 0 adds the product to y (residual connections) instead of
// overwriting y.

import { madd, hsum } from "./simd";
import { rowBytes, quadBlock, EVEN_BIAS, FMT_F16, FMT_Q8, FMT_Q4 } from "./formats";

export { quantizeInput, quantizeBlocks, matVecQ8, matVecQ4 } from "./matvec-quant";

// @ts-ignore: decorator
@inline function putRow(y: usize, r: i32, v: f32, accumulate: i32): void {
  const p = y + (<usize>r << 2);
  store<f32>(p, accumulate ? load<f32>(p) + v : v);
}

export function matVecF32(w: usize, x: usize, y: usize, cols: i32, accumulate: i32, r0: i32, r1: i32, tid: i32): void {
  const rb = <usize>cols << 2;
  const vec = cols & ~3;
  // eight rows side by side, row i of each eighth of [r0, r1): each of the
  // eight walks its eighth front to back
  const n = (cols & 3) == 0 ? max(0, r1 - r0) >> 3 : 0;
  const gap = <usize>n * rb;
  for (let i = 0; i < n; i++) {
    const w0 = w + <usize>(r0 + i) * rb;
    const w4 = w0 + (gap << 2);
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (let c = 0; c < vec; c += 4) {
      const o = <usize>c << 2;
      const xv = v128.load(x + o);
      a0 = madd(v128.load(w0 + o), xv, a0);
      a1 = madd(v128.load(w0 + gap + o), xv, a1);
      a2 = madd(v128.load(w0 + 2 * gap + o), xv, a2);
      a3 = madd(v128.load(w0 + 3 * gap + o), xv, a3);
      a4 = madd(v128.load(w4 + o), xv, a4);
      a5 = madd(v128.load(w4 + gap + o), xv, a5);
      a6 = madd(v128.load(w4 + 2 * gap + o), xv, a6);
      a7 = madd(v128.load(w4 + 3 * gap + o), xv, a7);
    }
    const r = r0 + i;
    putRow(y, r, hsum(a0), accumulate);
    putRow(y, r + n, hsum(a1), accumulate);
    putRow(y, r + 2 * n, hsum(a2), accumulate);
    putRow(y, r + 3 * n, hsum(a3), accumulate);
    putRow(y, r + 4 * n, hsum(a4), accumulate);
    putRow(y, r + 5 * n, hsum(a5), accumulate);
    putRow(y, r + 6 * n, hsum(a6), accumulate);
    putRow(y, r + 7 * n, hsum(a7), accumulate);
  }
  for (let r = r0 + 8 * n; r < r1; r++) {
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
  // four rows side by side, row i of each quarter of [r0, r1) (as in matVecF32)
  const n = max(0, r1 - r0) >> 2;
  const gap = <usize>n * rb;
  for (let i = 0; i < n; i++) {
    const w0 = w + <usize>(r0 + i) * rb;
    const w1 = w0 + gap;
    const w2 = w1 + gap;
    const w3 = w2 + gap;
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
    const r = r0 + i;
    putRow(y, r, hsum(a0), accumulate);
    putRow(y, r + n, hsum(a1), accumulate);
    putRow(y, r + 2 * n, hsum(a2), accumulate);
    putRow(y, r + 3 * n, hsum(a3), accumulate);
  }
  for (let r = r0 + 4 * n; r < r1; r++) {
    const wr = w + <usize>r * rb;
    let a = f32x4.splat(0);
    for (let c = 0; c < cols; c += 8) {
      const xo = x + (<usize>c << 2);
      a = dotF16Group(v128.load(wr + (<usize>c << 1)), v128.load(xo), v128.load(xo, 16), a);
    }
    putRow(y, r, hsum(a), accumulate);
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
    } else if (fmt == FMT_Q8 || fmt == FMT_Q4) {
      const lane = <usize>(r & 3) << 2;
      for (let b = 0; b < (cols >> 5); b++) {
        const qb = quadBlock(fmt, w, cols, r, b);
        const sc = v128.load32_splat(qb + lane);
        const ob = out + (<usize>b << 7);
        if (fmt == FMT_Q8) {
          for (let k = 0; k < 8; k++) {
            const v = i16x8.extend_low_i8x16_s(v128.xor(v128.load32_zero(qb + 16 + (<usize>k << 4) + lane), i32x4.splat(EVEN_BIAS)));
            v128.store(ob + (<usize>k << 4), f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(v)), sc));
          }
        } else {
          for (let k = 0; k < 4; k++) {
            // 4 bytes: low nibbles are columns 8k..8k+3, high nibbles 8k+4..8k+7
            const v = i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v128.load32_zero(qb + 16 + (<usize>k << 4) + lane)));
            v128.store(ob + (<usize>k << 5), f32x4.mul(f32x4.convert_i32x4_s(i32x4.shr_s(i32x4.shl(v, 28), 28)), sc));
            v128.store(ob + (<usize>k << 5), f32x4.mul(f32x4.convert_i32x4_s(i32x4.shr_s(i32x4.shl(v, 24), 28)), sc), 16);
          }
        }
      }
    } else {
      memory.copy(out, wr, <usize>cols << 2);
    }
  }
}
