// Matrix-matrix products Y = X W^T for a chunk of T tokens (prefill). Each
// weight row is read once per chunk and reused for all T tokens while it
// sits in cache, which is what makes prefill compute-bound instead of
// bandwidth-bound. By default quantized rows are first expanded to f32 in a
// per-thread scratch of 4 rows, a cost paid once per chunk.
//
// With INT_INPUT added to a Q8/Q4 format the product runs on integers
// instead: SIMD128 has no fused multiply-add for floats, so f32 products cost
// a multiply and an add per 4 MACs, while i32x4.dot_i16x8_s does 8 MACs in
// one instruction. The tokens are quantized per block of 32 to i16 (scale
// max/32767, far finer than the weights' own steps), the weights expanded to
// i16 once per chunk.
//
// X is [T, cols] f32; output row r of token t goes to y[t * ldy + r].

import { madd, hsum } from "./simd";
import { rowBytes, FMT_F32, FMT_Q8 } from "./formats";
import { dequantizeRows } from "./matvec";

// @ts-ignore: decorator
@inline function put(y: usize, i: usize, v: f32, accumulate: i32): void {
  const p = y + (i << 2);
  store<f32>(p, accumulate ? load<f32>(p) + v : v);
}

// Four weight rows (w0..w3, possibly repeated when fewer are valid) times all
// T tokens, two tokens at a time: 8 accumulators, 6 loads per 8 multiply-adds.
function tile(w0: usize, w1: usize, w2: usize, w3: usize, nr: i32, x: usize, cols: i32, T: i32, y: usize, ldy: i32, r: i32, accumulate: i32): void {
  const xb = <usize>cols << 2;
  let t = 0;
  for (; t + 2 <= T; t += 2) {
    const xa = x + <usize>t * xb;
    const xc = xa + xb;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
    for (let c = 0; c < cols; c += 4) {
      const o = <usize>c << 2;
      const u = v128.load(xa + o);
      const v = v128.load(xc + o);
      const k0 = v128.load(w0 + o);
      a0 = madd(k0, u, a0);
      b0 = madd(k0, v, b0);
      const k1 = v128.load(w1 + o);
      a1 = madd(k1, u, a1);
      b1 = madd(k1, v, b1);
      const k2 = v128.load(w2 + o);
      a2 = madd(k2, u, a2);
      b2 = madd(k2, v, b2);
      const k3 = v128.load(w3 + o);
      a3 = madd(k3, u, a3);
      b3 = madd(k3, v, b3);
    }
    const ya = <usize>t * <usize>ldy + <usize>r;
    const yc = ya + <usize>ldy;
    put(y, ya, hsum(a0), accumulate);
    put(y, yc, hsum(b0), accumulate);
    if (nr > 1) { put(y, ya + 1, hsum(a1), accumulate); put(y, yc + 1, hsum(b1), accumulate); }
    if (nr > 2) { put(y, ya + 2, hsum(a2), accumulate); put(y, yc + 2, hsum(b2), accumulate); }
    if (nr > 3) { put(y, ya + 3, hsum(a3), accumulate); put(y, yc + 3, hsum(b3), accumulate); }
  }
  if (t < T) {
    const xa = x + <usize>t * xb;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let c = 0; c < cols; c += 4) {
      const o = <usize>c << 2;
      const u = v128.load(xa + o);
      a0 = madd(v128.load(w0 + o), u, a0);
      a1 = madd(v128.load(w1 + o), u, a1);
      a2 = madd(v128.load(w2 + o), u, a2);
      a3 = madd(v128.load(w3 + o), u, a3);
    }
    const ya = <usize>t * <usize>ldy + <usize>r;
    put(y, ya, hsum(a0), accumulate);
    if (nr > 1) put(y, ya + 1, hsum(a1), accumulate);
    if (nr > 2) put(y, ya + 2, hsum(a2), accumulate);
    if (nr > 3) put(y, ya + 3, hsum(a3), accumulate);
  }
}

/**
 * Y (+)= X W^T over weight rows [r0, r1) of a matrix stored in layout `fmt`;
 * cols a multiple of 4 (of 8 for F16, of 32 for Q8/Q4). `scratch` holds
 * 16 * cols bytes per thread, or intScratchBytes(T, cols) with INT_INPUT.
 */
export function matMat(fmt: i32, w: usize, x: usize, y: usize, cols: i32, ldy: i32, T: i32, accumulate: i32, scratch: usize, r0: i32, r1: i32, tid: i32): void {
  if (fmt & INT_INPUT) {
    matMatInt(fmt & ~INT_INPUT, w, x, y, cols, ldy, T, accumulate, scratch + <usize>tid * intScratchBytes(T, cols), r0, r1);
    return;
  }
  const rb = rowBytes(fmt, cols);
  const fb = <usize>cols << 2;
  const mine = scratch + <usize>tid * (fb << 2);
  for (let r = r0; r < r1; r += 4) {
    const nr = min(4, r1 - r);
    let base: usize, stride: usize;
    if (fmt == FMT_F32) {
      base = w + <usize>r * rb;
      stride = rb;
    } else {
      dequantizeRows(fmt, w, cols, r, r + nr, mine);
      base = mine;
      stride = fb;
    }
    const w1 = base + stride * <usize>min(1, nr - 1);
    const w2 = base + stride * <usize>min(2, nr - 1);
    const w3 = base + stride * <usize>min(3, nr - 1);
    tile(base, w1, w2, w3, nr, x, cols, T, y, ldy, r, accumulate);
  }
}

/** Added to FMT_Q8 / FMT_Q4: quantize the tokens and multiply on integers. */
export const INT_INPUT: i32 = 16;

/** Per-thread scratch of the integer path: the tokens as i16 and their block scales, a panel of 4 weight rows as i16 pairs, their scales, and one row as i16. */
export function intScratchBytes(T: i32, cols: i32): usize {
  const c = <usize>cols, t = <usize>T;
  return t * c * 2 + ((t * (c >> 5) * 4 + 15) & ~15) + c * 8 + (c >> 1) + c * 2;
}

// Tokens [T, cols] f32 -> i16 per block of 32 with scale max/32767 (q), scales [T, cols/32] (s).
function quantizeTokens(x: usize, q: usize, s: usize, cols: i32, T: i32): void {
  const nb = <usize>(cols >> 5);
  const n = <usize>T * nb;
  for (let b: usize = 0; b < n; b++) {
    const xb = x + (b << 7);
    let m = f32x4.splat(0);
    for (let i: usize = 0; i < 8; i++) m = f32x4.max(m, f32x4.abs(v128.load(xb + (i << 4))));
    const mx = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
    const scale: f32 = mx / 32767;
    store<f32>(s + (b << 2), scale);
    const inv = f32x4.splat(scale > 0 ? <f32>1 / scale : 0);
    const qb = q + (b << 6);
    for (let i: usize = 0; i < 4; i++) {
      const lo = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb + (i << 5)), inv)));
      const hi = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb + (i << 5), 16), inv)));
      v128.store(qb + (i << 4), i16x8.narrow_i32x4_s(lo, hi));
    }
  }
}

// Row `r` of a Q8/Q4 matrix -> lane j of the panel: for each pair of columns
// (2p, 2p+1) the panel holds 16 bytes, rows 0..3 as i16 pairs, so that one
// dot_i16x8_s with a token's pair broadcast yields 4 rows' partial sums.
function packRow(fmt: i32, w: usize, cols: i32, r: i32, j: i32, panel: usize, ws: usize, tmp: usize): void {
  const row = w + <usize>r * rowBytes(fmt, cols);
  const nb = cols >> 5;
  if (fmt == FMT_Q8) {
    for (let c = 0; c < cols; c += 16) {
      const v = v128.load(row + <usize>c);
      v128.store(tmp + (<usize>c << 1), i16x8.extend_low_i8x16_s(v));
      v128.store(tmp + (<usize>c << 1), i16x8.extend_high_i8x16_s(v), 16);
    }
  } else {
    for (let b = 0; b < nb; b++) {
      const v = v128.load(row + (<usize>b << 4));
      const o = tmp + (<usize>b << 6);
      v128.store(o, i16x8.shr_s(i16x8.shl(v, 12), 12));
      v128.store(o, i16x8.shr_s(i16x8.shl(v, 8), 12), 16);
      v128.store(o, i16x8.shr_s(i16x8.shl(v, 4), 12), 32);
      v128.store(o, i16x8.shr_s(v, 12), 48);
    }
  }
  const scales = row + (fmt == FMT_Q8 ? <usize>cols : <usize>cols >> 1);
  for (let b = 0; b < nb; b++) store<f32>(ws + (<usize>b << 4) + (<usize>j << 2), load<f32>(scales + (<usize>b << 2)));
  const pairs = cols >> 1;
  for (let p = 0; p < pairs; p++) store<i32>(panel + (<usize>p << 4) + (<usize>j << 2), load<i32>(tmp + (<usize>p << 2)));
}

// @ts-ignore: decorator
@inline function dotPair(acc: v128, wv: v128, xp: usize): v128 {
  return i32x4.add(acc, i32x4.dot_i16x8_s(wv, v128.load32_splat(xp)));
}

// @ts-ignore: decorator
@inline function putRows(y: usize, i: usize, v: v128, nr: i32, accumulate: i32): void {
  const p = y + (i << 2);
  if (nr == 4) {
    v128.store(p, accumulate ? f32x4.add(v128.load(p), v) : v);
    return;
  }
  put(y, i, f32x4.extract_lane(v, 0), accumulate);
  if (nr > 1) put(y, i + 1, f32x4.extract_lane(v, 1), accumulate);
  if (nr > 2) put(y, i + 2, f32x4.extract_lane(v, 2), accumulate);
}

// One block of 32 columns for one token: 4 rows' integer sums rescaled into acc.
// @ts-ignore: decorator
@inline function blockSum(acc: v128, ia: v128, wsv: v128, xs: f32): v128 {
  return madd(f32x4.convert_i32x4_s(ia), f32x4.mul(wsv, f32x4.splat(xs)), acc);
}

function matMatInt(fmt: i32, w: usize, x: usize, y: usize, cols: i32, ldy: i32, T: i32, accumulate: i32, scratch: usize, r0: i32, r1: i32): void {
  const nb = cols >> 5;
  const xq = scratch;
  const xs = xq + <usize>T * <usize>cols * 2;
  const panel = xs + ((<usize>T * <usize>nb * 4 + 15) & ~15);
  const ws = panel + (<usize>cols << 3);
  const tmp = ws + (<usize>cols >> 1);
  quantizeTokens(x, xq, xs, cols, T);
  const xrow = <usize>cols << 1; // bytes of one quantized token
  for (let r = r0; r < r1; r += 4) {
    const nr = min(4, r1 - r);
    for (let j = 0; j < 4; j++) packRow(fmt, w, cols, r + min(j, nr - 1), j, panel, ws, tmp);
    let t = 0;
    for (; t + 4 <= T; t += 4) {
      let f0 = f32x4.splat(0), f1 = f32x4.splat(0), f2 = f32x4.splat(0), f3 = f32x4.splat(0);
      const x0 = xq + <usize>t * xrow;
      const x1 = x0 + xrow, x2 = x1 + xrow, x3 = x2 + xrow;
      const s0 = xs + <usize>t * (<usize>nb << 2);
      const sb = <usize>nb << 2;
      for (let b = 0; b < nb; b++) {
        let i0 = i32x4.splat(0), i1 = i32x4.splat(0), i2 = i32x4.splat(0), i3 = i32x4.splat(0);
        const pp = panel + (<usize>b << 8);
        const xo = <usize>b << 6;
        for (let p: usize = 0; p < 16; p += 2) {
          const wa = v128.load(pp + (p << 4));
          const xp = xo + (p << 2);
          i0 = dotPair(i0, wa, x0 + xp); i1 = dotPair(i1, wa, x1 + xp); i2 = dotPair(i2, wa, x2 + xp); i3 = dotPair(i3, wa, x3 + xp);
          const wb = v128.load(pp + (p << 4), 16);
          i0 = dotPair(i0, wb, x0 + xp + 4); i1 = dotPair(i1, wb, x1 + xp + 4); i2 = dotPair(i2, wb, x2 + xp + 4); i3 = dotPair(i3, wb, x3 + xp + 4);
        }
        const wsv = v128.load(ws + (<usize>b << 4));
        const so = s0 + (<usize>b << 2);
        f0 = blockSum(f0, i0, wsv, load<f32>(so));
        f1 = blockSum(f1, i1, wsv, load<f32>(so + sb));
        f2 = blockSum(f2, i2, wsv, load<f32>(so + 2 * sb));
        f3 = blockSum(f3, i3, wsv, load<f32>(so + 3 * sb));
      }
      const ya = <usize>t * <usize>ldy + <usize>r;
      putRows(y, ya, f0, nr, accumulate);
      putRows(y, ya + <usize>ldy, f1, nr, accumulate);
      putRows(y, ya + 2 * <usize>ldy, f2, nr, accumulate);
      putRows(y, ya + 3 * <usize>ldy, f3, nr, accumulate);
    }
    for (; t < T; t++) {
      let f0 = f32x4.splat(0);
      const x0 = xq + <usize>t * xrow;
      const s0 = xs + <usize>t * (<usize>nb << 2);
      for (let b = 0; b < nb; b++) {
        let i0 = i32x4.splat(0);
        const pp = panel + (<usize>b << 8);
        const xo = x0 + (<usize>b << 6);
        for (let p: usize = 0; p < 16; p++) i0 = dotPair(i0, v128.load(pp + (p << 4)), xo + (p << 2));
        f0 = blockSum(f0, i0, v128.load(ws + (<usize>b << 4)), load<f32>(s0 + (<usize>b << 2)));
      }
      putRows(y, <usize>t * <usize>ldy + <usize>r, f0, nr, accumulate);
    }
  }
}
