// Matrix-matrix products Y = X W^T for a chunk of T tokens (prefill). Each
// weight row is read once per chunk and reused for all T tokens while it
// sits in cache, which is what makes prefill compute-bound instead of
// bandwidth-bound. Quantized rows are first expanded to f32 in a per-thread
// scratch of 4 rows, a cost paid once per chunk.
//
// X is [T, cols] f32; output row r of token t goes to y[t * ldy + r].

import { madd, hsum } from "./simd";
import { rowBytes, FMT_F32 } from "./formats";
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
 * 16 * cols bytes per thread.
 */
export function matMat(fmt: i32, w: usize, x: usize, y: usize, cols: i32, ldy: i32, T: i32, accumulate: i32, scratch: usize, r0: i32, r1: i32, tid: i32): void {
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
