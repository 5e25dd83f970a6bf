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
// The low 16 bits may hold anything: the shift moves them to bits 0..12,
// which the mask clears.
// @ts-ignore: decorator
@inline export function decodeF16Top(t: v128): v128 {
  return f32x4.mul(f16TopTimesRebase(t), f32x4.splat(F16_REBASE));
}

const F16_REBASE: f32 = 5.192296858534828e33; // 2^112

/** decodeF16Top without the rebase: the weight times 2^-112, exact (f16 subnormals become f32 subnormals). */
// @ts-ignore: decorator
@inline function f16TopTimesRebase(t: v128): v128 {
  return v128.and(i32x4.shr_s(t, 3), i32x4.splat(0x8fffe000));
}

// Dot product of one 16-byte group of f16 weights with x's eight values
// xlo, xhi taken 2^112 times: the rebase moves from the weights onto x,
// where four rows share it. Each product is still exactly the weight times
// x rounded once, so the sums equal those of the weights decoded first, bit
// for bit, unless x times 2^112 overflows (|x| >= 2^16; see matVecF16).
// @ts-ignore: decorator
@inline function dotF16Group(wv: v128, xlo: v128, xhi: v128, acc: v128): v128 {
  const hi = f16TopTimesRebase(wv); // the low f16 is cleared by the mask
  const lo = f16TopTimesRebase(lowF16ToTop(wv));
  return madd(hi, xhi, madd(lo, xlo, acc));
}

// The low f16 of each lane moved to the top, zeros below: i32x4.shl(wv, 16)
// as a byte shuffle, which V8 11 emits as one vpshufb with the index vector
// held in a register. The shuffle may run on port 5, which the shifts and
// the multiply-adds (ports 0 and 1, where the decode is bound) do not use:
// measured from cache (one thread, 256 x 1024), 1.09x in the relaxed build;
// no change in SIMD128, which is bound by its total count of vector
// instructions. Indices of 16 and up give 0.
// @ts-ignore: decorator
@inline function lowF16ToTop(wv: v128): v128 {
  return i8x16.swizzle(wv, i8x16(-128, -128, 0, 1, -128, -128, 4, 5, -128, -128, 8, 9, -128, -128, 12, 13));
}

/** One row of layout F16 against x, with the weights rebased: exact for any x. */
function rowF16(wr: usize, x: usize, cols: i32): f32 {
  let a = f32x4.splat(0);
  for (let c = 0; c < cols; c += 8) {
    const wv = v128.load(wr + (<usize>c << 1));
    const xo = x + (<usize>c << 2);
    a = madd(decodeF16Top(wv), v128.load(xo, 16), madd(decodeF16Top(lowF16ToTop(wv)), v128.load(xo), a));
  }
  return hsum(a);
}

/** Layout F16; cols must be a positive multiple of 8. */
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
    // pointers stepping by a constant, as in matvec-quant.ts's quadStreams:
    // addresses derived from c cost TurboFan (V8 11) an address computation
    // per load; with this and the mask dropped from dotF16Group, 1.35x from
    // cache (one thread, 1024 x 1024), 1.15x on whole f16 decode steps
    let q0 = w0, q1 = w1, q2 = w2, q3 = w3, xk = x;
    const end = x + (<usize>cols << 2);
    do {
      // the rebase on x (dotF16Group): 2 multiplies per group of four rows
      // instead of 8; measured from cache (one thread, 256 x 1024), 1.18x
      // in SIMD128, 1.30x relaxed
      const xlo = f32x4.mul(v128.load(xk), f32x4.splat(F16_REBASE));
      const xhi = f32x4.mul(v128.load(xk, 16), f32x4.splat(F16_REBASE));
      a0 = dotF16Group(v128.load(q0), xlo, xhi, a0);
      a1 = dotF16Group(v128.load(q1), xlo, xhi, a1);
      a2 = dotF16Group(v128.load(q2), xlo, xhi, a2);
      a3 = dotF16Group(v128.load(q3), xlo, xhi, a3);
      q0 += 16; q1 += 16; q2 += 16; q3 += 16; xk += 32;
    } while (xk < end);
    const r = r0 + i;
    const s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
    // x times 2^112 overflows only where |x| >= 2^16, and then makes the
    // sums inf or NaN (inf times a weight, or times 0). Any sum that is not
    // finite (that, or an x or product beyond f32's range) sends the four
    // rows through rowF16, which rebases the weights instead: exact for any x
    if (isFinite(s0 + s1 + s2 + s3)) {
      putRow(y, r, s0, accumulate);
      putRow(y, r + n, s1, accumulate);
      putRow(y, r + 2 * n, s2, accumulate);
      putRow(y, r + 3 * n, s3, accumulate);
    } else {
      putRow(y, r, rowF16(w0, x, cols), accumulate);
      putRow(y, r + n, rowF16(w1, x, cols), accumulate);
      putRow(y, r + 2 * n, rowF16(w2, x, cols), accumulate);
      putRow(y, r + 3 * n, rowF16(w3, x, cols), accumulate);
    }
  }
  for (let r = r0 + 4 * n; r < r1; r++) putRow(y, r, rowF16(w + <usize>r * rb, x, cols), accumulate);
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
        v128.store(out + (<usize>c << 2), decodeF16Top(wv), 16);
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
