// Matrix-vector products for the Q8 and Q4 quad layouts of formats.ts (one
// token, decode). Memory bound by design, so the work per weight byte must
// stay below what the core can overlap with the stream:
//
// - the input is quantized once per product (quantizeInput) into the order
//   the weights come in, so the inner loop has no shuffles;
// - integer products use i32x4.dot_i16x8_s (8 multiply-adds each). A Q8
//   piece of 16 bytes is used as loaded (each i16 lane is
//   256 * q_odd + q_even + 128, see formats.ts) and once masked to its
//   q_even + 128 bytes; against inputs (x_odd) and (256 x_even - x_odd) the
//   two dot products sum to 256 * (q . x) + 32768 * sum(x_even), and the
//   last term is subtracted per block: one mask per piece instead of the
//   shift, mask or sign extension that separating the bytes would cost. Q4
//   in the SIMD128 build: nibbles land as 4096 * w in their lanes with one
//   shift or mask each (cheaper than sign-extending in place), 14
//   operations per 16 weight bytes. Q4 in the relaxed build: the input as
//   i8 and the nibbles + 8 (0..15) as the 7-bit operand of
//   i16x8.relaxed_dot_i8x16_i7x16_s (one pmaddubsw on x64, 16 multiply-adds,
//   exact on every engine since that operand is below 128), 8 operations
//   per 16 bytes, the i16 sums widened once per block: from cache 1.57x
//   the SIMD128 path, whole decode steps (2 threads) 1.27x. (Not
//   i32x4.relaxed_dot_i8x16_i7x16_add_s: V8 11 expands it into 5
//   instructions per use, rebuilding its vector of ones each time);
// - a dot product's four lanes are the quad's four rows, so a block costs
//   one convert and one multiply-add per quad, with no horizontal sums;
// - four quads are read side by side, each walking its own quarter of the
//   rows: four long sequential streams per thread, which the hardware
//   prefetcher follows as far as it follows the read probe's (one stream per
//   thread ran at half the probe's speed; more in quadStreams).
//
// Kernel signature: (w, xq, y, cols, accumulate, r0, r1, tid); xq from
// quantizeInput with the same format, r0 a multiple of 4, cols a multiple
// of 32, y 16-byte aligned. accumulate != 0 adds to y.

import { madd } from "./simd";
import { FMT_Q8, FMT_Q4, quadBlockBytes } from "./formats";

// ---- input quantization

// Q8 inputs of eight consecutive levels (two pieces of 4): per piece the
// pair (x1, x3) for the loaded lanes, then (256 x0 - x1, 256 x2 - x3) for
// the masked ones (at most 256 * 127 + 127 in magnitude: fits i16).
// @ts-ignore: decorator
@inline function orderQ8(n: v128): v128 {
  const odd = i8x16.shuffle(n, n, 2, 3, 6, 7, 2, 3, 6, 7, 10, 11, 14, 15, 10, 11, 14, 15);
  const even = i8x16.shuffle(n, n, 0, 1, 4, 5, 0, 1, 4, 5, 8, 9, 12, 13, 8, 9, 12, 13);
  const x2 = i16x8.sub(i16x8.shl(even, 8), odd);
  return i8x16.shuffle(odd, x2, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
}

// Q4 wants a piece of 8 as x0 x2 | x4 x6 | x1 x3 | x5 x7 (the order its
// four shifts produce).
// @ts-ignore: decorator
@inline function orderQ4(v: v128): v128 {
  return i8x16.shuffle(v, v, 0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
}

// round(x * inv) as i32 lanes, for |x * inv| <= 127: adding 1.5 * 2^23
// rounds to an integer (to nearest, ties to even, as f32x4.nearest) held in
// the low mantissa bits, which the integer subtraction of the same constant
// leaves; 2 operations where nearest and trunc_sat cost V8 seven.
// @ts-ignore: decorator
@inline function levels(x: v128, inv: v128): v128 {
  const magic = f32x4.splat(12582912);
  return i32x4.sub(f32x4.add(f32x4.mul(x, inv), magic), magic);
}

/**
 * Quantizes x (cols f32) per block of 32 to [-127, 127] (scale max|x| / 127)
 * for matVecQ8 (fmt Q8) or matVecQ4 (fmt Q4) into q (inputBytes(cols) of
 * src/cpu/layout.ts): cols i16 in the order above, then the cols/32 f32
 * scales, for Q8 then per block 32768 * (sum of its even-column levels) as
 * i32 (the term its products subtract). Q4 in the relaxed build: cols i8 in
 * column order at the start (the first half of the i16 area; the second is
 * not written), the scales, then per block 8 * (sum of its levels) as i32
 * (the products' nibble offset).
 */
export function quantizeInput(fmt: i32, x: usize, q: usize, cols: i32): void {
  quantizeBlocks(fmt, x, q, cols, 0, cols >> 5);
}

/**
 * Blocks [b0, b1) (of 32 inputs) of quantizeInput, so that a parallel
 * kernel can quantize the part of a product's input it has just written
 * instead of the main thread quantizing all of it alone.
 */
export function quantizeBlocks(fmt: i32, x: usize, q: usize, cols: i32, b0: i32, b1: i32): void {
  const nb = cols >> 5;
  const scales = q + (<usize>cols << 1);
  for (let b = b0; b < b1; b++) {
    const xb = x + (<usize>b << 7);
    const x0 = v128.load(xb), x1 = v128.load(xb, 16), x2 = v128.load(xb, 32), x3 = v128.load(xb, 48);
    const x4 = v128.load(xb, 64), x5 = v128.load(xb, 80), x6 = v128.load(xb, 96), x7 = v128.load(xb, 112);
    // max |x| by a tree of pmax (one maxps each; f32x4.max's NaN rules cost V8 eight instructions), the last two steps across lanes
    let m = f32x4.pmax(f32x4.pmax(f32x4.pmax(f32x4.abs(x0), f32x4.abs(x1)), f32x4.pmax(f32x4.abs(x2), f32x4.abs(x3))), f32x4.pmax(f32x4.pmax(f32x4.abs(x4), f32x4.abs(x5)), f32x4.pmax(f32x4.abs(x6), f32x4.abs(x7))));
    m = f32x4.pmax(m, i32x4.shuffle(m, m, 2, 3, 0, 1));
    m = f32x4.pmax(m, i32x4.shuffle(m, m, 1, 0, 3, 2));
    const scale: f32 = f32x4.extract_lane(m, 0) / 127;
    store<f32>(scales + (<usize>b << 2), scale);
    const inv = f32x4.splat(scale > 0 ? <f32>1 / scale : 0);
    const l0 = levels(x0, inv), l1 = levels(x1, inv), l2 = levels(x2, inv), l3 = levels(x3, inv);
    const l4 = levels(x4, inv), l5 = levels(x5, inv), l6 = levels(x6, inv), l7 = levels(x7, inv);
    const n0 = i16x8.narrow_i32x4_s(l0, l1), n1 = i16x8.narrow_i32x4_s(l2, l3);
    const n2 = i16x8.narrow_i32x4_s(l4, l5), n3 = i16x8.narrow_i32x4_s(l6, l7);
    const q8 = fmt == FMT_Q8;
    if (ASC_FEATURE_RELAXED_SIMD && !q8) {
      const s = i32x4.add(i32x4.add(i32x4.add(l0, l1), i32x4.add(l2, l3)), i32x4.add(i32x4.add(l4, l5), i32x4.add(l6, l7)));
      const sum = i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
      store<i32>(scales + (<usize>nb << 2) + (<usize>b << 2), sum << 3);
      v128.store(q + (<usize>b << 5), i8x16.narrow_i16x8_s(n0, n1));
      v128.store(q + (<usize>b << 5), i8x16.narrow_i16x8_s(n2, n3), 16);
      continue;
    }
    const qb = q + (<usize>b << 6);
    if (q8) {
      // even columns are lanes 0 and 2 of each group of four
      const s = i32x4.add(i32x4.add(i32x4.add(l0, l1), i32x4.add(l2, l3)), i32x4.add(i32x4.add(l4, l5), i32x4.add(l6, l7)));
      store<i32>(scales + (<usize>nb << 2) + (<usize>b << 2), (i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 2)) << 15);
    }
    v128.store(qb, q8 ? orderQ8(n0) : orderQ4(n0));
    v128.store(qb, q8 ? orderQ8(n1) : orderQ4(n1), 16);
    v128.store(qb, q8 ? orderQ8(n2) : orderQ4(n2), 32);
    v128.store(qb, q8 ? orderQ8(n3) : orderQ4(n3), 48);
  }
}

// ---- block dot products: one quad-block against one input block, i32 lane i = row i

// Piece k of a Q8 quad-block against its input pairs (x1: odd columns, x2:
// 256 * even - odd).
// @ts-ignore: decorator
@inline function q8Piece(acc: v128, v: v128, x1: v128, x2: v128): v128 {
  const lo = v128.and(v, i16x8.splat(0x00ff));
  return i32x4.add(i32x4.add(acc, i32x4.dot_i16x8_s(v, x1)), i32x4.dot_i16x8_s(lo, x2));
}

// Piece k of a Q4 quad-block (SIMD128): each nibble moved to the top 4 bits
// of its i16 lane (4096 * w) by one shift or mask; xa..xd the matching
// input pairs.
// @ts-ignore: decorator
@inline function q4Piece(acc: v128, v: v128, xa: v128, xb: v128, xc: v128, xd: v128): v128 {
  const top = i16x8.splat(<i16>0xf000);
  const a = i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v, 12), xa), i32x4.dot_i16x8_s(v128.and(i16x8.shl(v, 8), top), xb));
  const b = i32x4.add(i32x4.dot_i16x8_s(v128.and(i16x8.shl(v, 4), top), xc), i32x4.dot_i16x8_s(v128.and(v, top), xd));
  return i32x4.add(acc, i32x4.add(a, b));
}

// Piece k of a Q4 quad-block (relaxed build) as 8 i16 lanes, each the sum
// of 4 products (lanes 2i, 2i + 1: row i), against the i8 inputs xl
// (columns 8k..8k+3) and xh (8k+4..8k+7). xor 0x88 turns each two's
// complement nibble w into w + 8 (0..15), the 7-bit operand; the block's
// 8 * sum(x) is subtracted after widening. A lane's sum over the block's 4
// pieces is at most 16 * 15 * 127 = 30480 in magnitude: it fits i16.
// @ts-ignore: decorator
@inline function q4PieceI8(acc: v128, v: v128, xl: v128, xh: v128): v128 {
  const u = v128.xor(v, i8x16.splat(<i8>0x88));
  const lo = v128.and(u, i8x16.splat(0x0f));
  const hi = v128.and(i16x8.shr_u(u, 4), i8x16.splat(0x0f));
  return i16x8.add(acc, i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(xl, lo), i16x8.relaxed_dot_i8x16_i7x16_s(xh, hi)));
}

// Integer sums of block b of the one quad-block at p.
// @ts-ignore: decorator
@inline function blockDot(q8: bool, p: usize, xq: usize, b: i32, corr: usize): v128 {
  if (q8) {
    const xo = xq + (<usize>b << 6);
    let d = i32x4.splat(0);
    for (let k = 0; k < 8; k++) d = q8Piece(d, v128.load(p + 16 + (<usize>k << 4)), v128.load32_splat(xo + (<usize>k << 3)), v128.load32_splat(xo + (<usize>k << 3), 4));
    return i32x4.sub(d, v128.load32_splat(corr + (<usize>b << 2)));
  }
  if (ASC_FEATURE_RELAXED_SIMD) {
    const xo = xq + (<usize>b << 5);
    let s = i16x8.splat(0);
    for (let k = 0; k < 4; k++) s = q4PieceI8(s, v128.load(p + 16 + (<usize>k << 4)), v128.load32_splat(xo + (<usize>k << 3)), v128.load32_splat(xo + (<usize>k << 3), 4));
    return i32x4.sub(i32x4.dot_i16x8_s(s, i16x8.splat(1)), v128.load32_splat(corr + (<usize>b << 2)));
  }
  const xo = xq + (<usize>b << 6);
  let d = i32x4.splat(0);
  for (let k = 0; k < 4; k++) {
    const xk = xo + (<usize>k << 4);
    d = q4Piece(d, v128.load(p + 16 + (<usize>k << 4)), v128.load32_splat(xk), v128.load32_splat(xk, 4), v128.load32_splat(xk, 8), v128.load32_splat(xk, 12));
  }
  return d;
}

// y[i] (+)= v lanes for the n (1..4) valid rows of a quad.
// @ts-ignore: decorator
@inline function putQuad(y: usize, v: v128, n: i32, accumulate: i32): void {
  if (n == 4) {
    v128.store(y, accumulate ? f32x4.add(v128.load(y), v) : v);
    return;
  }
  const s0 = f32x4.extract_lane(v, 0), s1 = f32x4.extract_lane(v, 1), s2 = f32x4.extract_lane(v, 2);
  store<f32>(y, accumulate ? load<f32>(y) + s0 : s0);
  if (n > 1) store<f32>(y, accumulate ? load<f32>(y, 4) + s1 : s1, 4);
  if (n > 2) store<f32>(y, accumulate ? load<f32>(y, 8) + s2 : s2, 8);
}

// Quads [q0 + i], [q0 + n + i], [q0 + 2n + i], [q0 + 3n + i] for i in
// [0, n), four side by side (the input loaded once per piece for all four),
// their sums in registers across the blocks. Consecutive quads are
// consecutive memory, so each of the four walks one quarter of the rows
// front to back: four long sequential streams per thread, like the read
// probe's. Measured (two threads, q8, all of a decode's mat-vecs back to
// back, against the probe in the same run; mean over passes, best pass in
// brackets): 32 quads side by side block by block (32 streams of one quad
// each, sums kept in y) 0.70-0.74 (0.72-0.80), one quad at a time 0.47,
// these four streams 0.74-0.88 (0.83-0.98); from cache 1.5x faster than
// the 32 quads (fewer spills, no y traffic).
// @ts-ignore: decorator
@inline function quadStreams(q8: bool, w: usize, xq: usize, y: usize, nb: i32, qs: usize, qbb: usize, xs: usize, corr: usize, unit: f32, accumulate: i32, r0: i32, n: i32): void {
  const gap = <usize>n * qs;
  const u = f32x4.splat(unit);
  for (let i = 0; i < n; i++) {
    let p0 = w + <usize>((r0 >> 2) + i) * qs;
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
    for (let b = 0; b < nb; b++) {
      const p1 = p0 + gap, p2 = p1 + gap, p3 = p2 + gap;
      const xo = xq + (<usize>b << 6);
      let d0 = i32x4.splat(0), d1 = d0, d2 = d0, d3 = d0;
      if (q8) {
        // One piece of each stream per iteration, through pointers that
        // step by a constant. TurboFan (V8 11) issues a basic block's loads
        // ahead of its arithmetic: with the block's 8 pieces unrolled, all
        // 32 weight vectors and 16 input splats were loaded first and
        // spilled; a loop iteration holds 6 loaded vectors, the 4 sums and
        // the mask in registers. Pointers instead of k-derived addresses
        // leave 5 adds per iteration where base + (k << 4) cost 8 address
        // computations and reloads of spilled scalars: 1.11x from cache
        // (one thread, 1024 x 1024), 1.01-1.015x on whole decode steps.
        let q0 = p0, q1 = p1, q2 = p2, q3 = p3, xk = xo;
        const end = xo + 64;
        do {
          const e = v128.load32_splat(xk), o = v128.load32_splat(xk, 4);
          d0 = q8Piece(d0, v128.load(q0, 16), e, o);
          d1 = q8Piece(d1, v128.load(q1, 16), e, o);
          d2 = q8Piece(d2, v128.load(q2, 16), e, o);
          d3 = q8Piece(d3, v128.load(q3, 16), e, o);
          q0 += 16; q1 += 16; q2 += 16; q3 += 16; xk += 8;
        } while (xk < end);
        const c = v128.load32_splat(corr + (<usize>b << 2));
        d0 = i32x4.sub(d0, c); d1 = i32x4.sub(d1, c); d2 = i32x4.sub(d2, c); d3 = i32x4.sub(d3, c);
      } else if (ASC_FEATURE_RELAXED_SIMD) {
        // the loop of the Q8 branch, on i16 sums widened once per block
        let s0 = i16x8.splat(0), s1 = s0, s2 = s0, s3 = s0;
        let q0 = p0, q1 = p1, q2 = p2, q3 = p3, xk = xq + (<usize>b << 5);
        const end = xk + 32;
        do {
          const xl = v128.load32_splat(xk), xh = v128.load32_splat(xk, 4);
          s0 = q4PieceI8(s0, v128.load(q0, 16), xl, xh);
          s1 = q4PieceI8(s1, v128.load(q1, 16), xl, xh);
          s2 = q4PieceI8(s2, v128.load(q2, 16), xl, xh);
          s3 = q4PieceI8(s3, v128.load(q3, 16), xl, xh);
          q0 += 16; q1 += 16; q2 += 16; q3 += 16; xk += 8;
        } while (xk < end);
        const one = i16x8.splat(1), c = v128.load32_splat(corr + (<usize>b << 2));
        d0 = i32x4.sub(i32x4.dot_i16x8_s(s0, one), c); d1 = i32x4.sub(i32x4.dot_i16x8_s(s1, one), c);
        d2 = i32x4.sub(i32x4.dot_i16x8_s(s2, one), c); d3 = i32x4.sub(i32x4.dot_i16x8_s(s3, one), c);
      } else {
        // the loop of the Q8 branch (1.055x from cache over k-derived addresses)
        let q0 = p0, q1 = p1, q2 = p2, q3 = p3, xk = xo;
        const end = xo + 64;
        do {
          const xa = v128.load32_splat(xk), xb = v128.load32_splat(xk, 4), xc = v128.load32_splat(xk, 8), xd = v128.load32_splat(xk, 12);
          d0 = q4Piece(d0, v128.load(q0, 16), xa, xb, xc, xd);
          d1 = q4Piece(d1, v128.load(q1, 16), xa, xb, xc, xd);
          d2 = q4Piece(d2, v128.load(q2, 16), xa, xb, xc, xd);
          d3 = q4Piece(d3, v128.load(q3, 16), xa, xb, xc, xd);
          q0 += 16; q1 += 16; q2 += 16; q3 += 16; xk += 16;
        } while (xk < end);
      }
      const xsb = v128.load32_splat(xs + (<usize>b << 2));
      a0 = madd(f32x4.convert_i32x4_s(d0), f32x4.mul(v128.load(p0), xsb), a0);
      a1 = madd(f32x4.convert_i32x4_s(d1), f32x4.mul(v128.load(p1), xsb), a1);
      a2 = madd(f32x4.convert_i32x4_s(d2), f32x4.mul(v128.load(p2), xsb), a2);
      a3 = madd(f32x4.convert_i32x4_s(d3), f32x4.mul(v128.load(p3), xsb), a3);
      p0 += qbb;
    }
    const yr = y + (<usize>(r0 + 4 * i) << 2);
    const yg = <usize>n << 4;
    putQuad(yr, f32x4.mul(a0, u), 4, accumulate);
    putQuad(yr + yg, f32x4.mul(a1, u), 4, accumulate);
    putQuad(yr + 2 * yg, f32x4.mul(a2, u), 4, accumulate);
    putQuad(yr + 3 * yg, f32x4.mul(a3, u), 4, accumulate);
  }
}

// @ts-ignore: decorator
@inline function matVecQuads(q8: bool, w: usize, xq: usize, y: usize, cols: i32, accumulate: i32, r0: i32, r1: i32): void {
  const nb = cols >> 5;
  const qbb = quadBlockBytes(q8 ? FMT_Q8 : FMT_Q4);
  const qs = <usize>nb * qbb; // bytes of one quad
  const xs = xq + (<usize>cols << 1);
  const corr = xs + (<usize>nb << 2);
  const unit: f32 = q8 ? <f32>1 / 256 : ASC_FEATURE_RELAXED_SIMD ? 1 : <f32>1 / 4096;
  // whole quads in four streams, the rest (at most three quads and a
  // matrix's last, partial one) one quad at a time
  const n = max(0, r1 - r0) >> 4;
  quadStreams(q8, w, xq, y, nb, qs, qbb, xs, corr, unit, accumulate, r0, n);
  for (let r = r0 + 16 * n; r < r1; r += 4) {
    let p = w + <usize>(r >> 2) * qs;
    let acc = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      acc = madd(f32x4.convert_i32x4_s(blockDot(q8, p, xq, b, corr)), f32x4.mul(v128.load(p), v128.load32_splat(xs + (<usize>b << 2))), acc);
      p += qbb;
    }
    putQuad(y + (<usize>r << 2), f32x4.mul(acc, f32x4.splat(unit)), min(4, r1 - r), accumulate);
  }
}

/** Layout Q8 of formats.ts; xq from quantizeInput(FMT_Q8, ...). */
export function matVecQ8(w: usize, xq: usize, y: usize, cols: i32, accumulate: i32, r0: i32, r1: i32, tid: i32): void {
  matVecQuads(true, w, xq, y, cols, accumulate, r0, r1);
}

/** Layout Q4 of formats.ts; xq from quantizeInput(FMT_Q4, ...). */
export function matVecQ4(w: usize, xq: usize, y: usize, cols: i32, accumulate: i32, r0: i32, r1: i32, tid: i32): void {
  matVecQuads(false, w, xq, y, cols, accumulate, r0, r1);
}
