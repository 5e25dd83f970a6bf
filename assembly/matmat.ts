// Matrix-matrix products Y = X W^T for a chunk of T tokens (prefill). Each
// weight row is read once per chunk and reused for all T tokens while it
// sits in cache, which is what makes prefill compute-bound instead of
// bandwidth-bound.
//
// Both paths are register-blocked on tiles of 8 weight rows x 4 tokens: the
// weights are repacked per 8 rows into a panel (for each column the 8 rows'
// values side by side), the tokens per 4 into groups (for each column the 4
// tokens' values side by side; prepareTokens, once per product, shared by
// the threads), so that the inner loop walks two pointers with constant
// offsets: 2 panel loads and 4 broadcasts feed 8 vector multiply-adds.
// Repacking costs O(rows x cols + T x cols) per chunk, next to the
// O(rows x cols x T) arithmetic. (Measured, one thread, 1024 columns: f32
// 14.5 GMAC/s, the integer path 21-23, against 14 and 15 for the earlier
// 4x2 / 4x4 tiles with one pointer per row and token.)
//
// Float path (F32, F16): f32 multiply-adds (fused in the relaxed build).
// Integer path (INT_INPUT added to Q8/Q4): SIMD128 has no fused float
// multiply-add, so f32 costs a multiply and an add per 4 MACs, while
// i32x4.dot_i16x8_s does 8 MACs in one instruction. The tokens are quantized
// per block of 32 to i16 (scale max/32767, far finer than the weights' own
// steps), the weights expanded to i16 pairs in the panel.
//
// X is [T, cols] f32; output row r of token t goes to y[t * ldy + r].

import { madd } from "./simd";
import { FMT_F32, blockScale, unpackRowI16 } from "./formats";
import { dequantizeRows } from "./matvec";

// @ts-ignore: decorator
@inline function put(y: usize, i: usize, v: f32, accumulate: i32): void {
  const p = y + (i << 2);
  store<f32>(p, accumulate ? load<f32>(p) + v : v);
}

// Rows i..i+min(nr,4)-1 of one token from a vector of 4 rows.
// @ts-ignore: decorator
@inline function putRows(y: usize, i: usize, v: v128, nr: i32, accumulate: i32): void {
  const p = y + (i << 2);
  if (nr >= 4) {
    v128.store(p, accumulate ? f32x4.add(v128.load(p), v) : v);
    return;
  }
  if (nr > 0) put(y, i, f32x4.extract_lane(v, 0), accumulate);
  if (nr > 1) put(y, i + 1, f32x4.extract_lane(v, 1), accumulate);
  if (nr > 2) put(y, i + 2, f32x4.extract_lane(v, 2), accumulate);
}

// Transposes 4x4 blocks of 32-bit lanes from 4 source rows (a..d, `n` bytes
// each) into dst: for each lane position k (a 32-bit column, or an i16 pair)
// the 4 rows' values side by side in 16 bytes at dst + k * stride.
function interleave4(a: usize, b: usize, c: usize, d: usize, n: usize, dst: usize, stride: usize): void {
  for (let o: usize = 0; o < n; o += 16) {
    const va = v128.load(a + o), vb = v128.load(b + o), vc = v128.load(c + o), vd = v128.load(d + o);
    const ab0 = i32x4.shuffle(va, vb, 0, 4, 1, 5), ab1 = i32x4.shuffle(va, vb, 2, 6, 3, 7);
    const cd0 = i32x4.shuffle(vc, vd, 0, 4, 1, 5), cd1 = i32x4.shuffle(vc, vd, 2, 6, 3, 7);
    const q = dst + (o >> 2) * stride;
    v128.store(q, i64x2.shuffle(ab0, cd0, 0, 2));
    v128.store(q + stride, i64x2.shuffle(ab0, cd0, 1, 3));
    v128.store(q + 2 * stride, i64x2.shuffle(ab1, cd1, 0, 2));
    v128.store(q + 3 * stride, i64x2.shuffle(ab1, cd1, 1, 3));
  }
}

/** Added to a format: matMat's x is already in prepareTokens' layout. */
export const PREPARED: i32 = 32;

/** Bytes of prepareTokens' output for T tokens of cols. */
export function preparedBytes(fmt: i32, T: i32, cols: i32): usize {
  const c = <usize>cols, t = <usize>((T + 3) & ~3);
  return fmt & INT_INPUT ? t * c * 2 + t * (c >> 5) * 4 : t * c * 4;
}

/**
 * X [T, cols] f32 -> the tile layout of matMat's path for `fmt` (groups of 4
 * tokens; quantized for INT_INPUT) at dst. Done once per product, so that
 * the threads, taking row tiles in any number, share it.
 */
export function prepareTokens(fmt: i32, x: usize, cols: i32, T: i32, dst: usize): void {
  if (fmt & INT_INPUT) quantizeTokens(x, dst, dst + <usize>((T + 3) & ~3) * (<usize>cols << 1), cols, T);
  else groupTokens(x, dst, cols, T);
}

/** matMat's scratch per thread, in bytes (the caller provides threads times this). */
export function matMatScratchBytes(fmt: i32, T: i32, cols: i32): usize {
  const c = <usize>cols;
  const own: usize = fmt & PREPARED ? 0 : preparedBytes(fmt, T, cols);
  if (fmt & INT_INPUT) return own + c * 16 + c + c * 16;
  return own + c * 32 + ((fmt & 15) == FMT_F32 ? 128 : c * 32);
}

/**
 * Y (+)= X W^T over weight rows [r0, r1) of a matrix stored in layout `fmt`
 * (F32, F16, or Q8/Q4 with INT_INPUT; with PREPARED x comes from
 * prepareTokens); cols a multiple of 4 (of 8 for F16, of 32 for Q8/Q4).
 * `scratch` holds threads x matMatScratchBytes.
 */
export function matMat(fmt: i32, w: usize, x: usize, y: usize, cols: i32, ldy: i32, T: i32, accumulate: i32, scratch: usize, r0: i32, r1: i32, tid: i32): void {
  let mine = scratch + <usize>tid * matMatScratchBytes(fmt, T, cols);
  let tokens = x;
  if (!(fmt & PREPARED)) {
    tokens = mine;
    prepareTokens(fmt, x, cols, T, tokens);
    mine += preparedBytes(fmt, T, cols);
  }
  const f = fmt & 15;
  if (fmt & INT_INPUT) matMatInt(f, w, tokens, y, cols, ldy, T, accumulate, mine, r0, r1);
  else matMatFloat(f, w, tokens, y, cols, ldy, T, accumulate, mine, r0, r1);
}

// Tokens [T, cols] f32 -> groups of 4 (the last repeating token T-1): per
// column the 4 tokens' values, 16 bytes.
function groupTokens(x: usize, q: usize, cols: i32, T: i32): void {
  const rb = <usize>cols << 2;
  for (let t = 0; t < T; t += 4) {
    const r0 = x + <usize>t * rb;
    const last = x + <usize>(T - 1) * rb;
    const r1 = min(r0 + rb, last), r2 = min(r0 + 2 * rb, last), r3 = min(r0 + 3 * rb, last);
    interleave4(r0, r1, r2, r3, rb, q + <usize>t * rb, 16);
  }
}

// 8 rows x 4 tokens in f32: panel pp (per column 32 bytes: rows 0-3, 4-7),
// token group xp (per column 16 bytes). Sums of rows 0-3 / 4-7 of token j
// land in acc + 32j, + 32j + 16.
function tileF32(pp: usize, xp: usize, cols: i32, acc: usize): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  const end = pp + (<usize>cols << 5);
  while (pp < end) {
    const wa = v128.load(pp), wb = v128.load(pp, 16);
    let u = v128.load32_splat(xp);
    a0 = madd(wa, u, a0); b0 = madd(wb, u, b0);
    u = v128.load32_splat(xp, 4);
    a1 = madd(wa, u, a1); b1 = madd(wb, u, b1);
    u = v128.load32_splat(xp, 8);
    a2 = madd(wa, u, a2); b2 = madd(wb, u, b2);
    u = v128.load32_splat(xp, 12);
    a3 = madd(wa, u, a3); b3 = madd(wb, u, b3);
    pp += 32;
    xp += 16;
  }
  v128.store(acc, a0); v128.store(acc, b0, 16);
  v128.store(acc, a1, 32); v128.store(acc, b1, 48);
  v128.store(acc, a2, 64); v128.store(acc, b2, 80);
  v128.store(acc, a3, 96); v128.store(acc, b3, 112);
}

// Writes the 8 rows x nt tokens of a tile's sums (acc as tileF32 leaves it).
function putTile(y: usize, ldy: i32, t: i32, r: i32, nt: i32, nr: i32, acc: usize, accumulate: i32): void {
  const yt = <usize>t * <usize>ldy + <usize>r;
  for (let j = 0; j < nt; j++) {
    const yj = yt + <usize>j * <usize>ldy;
    putRows(y, yj, v128.load(acc + (<usize>j << 5)), nr, accumulate);
    putRows(y, yj + 4, v128.load(acc + (<usize>j << 5), 16), nr - 4, accumulate);
  }
}

// xg: the tokens as groupTokens leaves them.
function matMatFloat(fmt: i32, w: usize, xg: usize, y: usize, cols: i32, ldy: i32, T: i32, accumulate: i32, scratch: usize, r0: i32, r1: i32): void {
  const rb = <usize>cols << 2;
  const panel = scratch;
  const rows = panel + (<usize>cols << 5); // F16 rows expanded to f32
  const acc = rows; // 128 bytes, free once the panel is built
  for (let r = r0; r < r1; r += 8) {
    const nr = min(8, r1 - r);
    let base: usize, stride: usize;
    if (fmt == FMT_F32) {
      base = w + <usize>r * rb;
      stride = rb;
    } else {
      dequantizeRows(fmt, w, cols, r, r + nr, rows);
      base = rows;
      stride = rb;
    }
    const last = <usize>(nr - 1);
    for (let h: usize = 0; h < 2; h++) {
      const j = h << 2;
      interleave4(base + min(j, last) * stride, base + min(j + 1, last) * stride, base + min(j + 2, last) * stride, base + min(j + 3, last) * stride, rb, panel + (h << 4), 32);
    }
    for (let t = 0; t < T; t += 4) {
      tileF32(panel, xg + <usize>t * rb, cols, acc);
      putTile(y, ldy, t, r, min(4, T - t), nr, acc, accumulate);
    }
  }
}

/** Added to FMT_Q8 / FMT_Q4: quantize the tokens and multiply on integers. */
export const INT_INPUT: i32 = 16;

// One token's block of 32 (at p) -> its scale max|x| / 32767.
// @ts-ignore: decorator
@inline function blockStep(p: usize): f32 {
  let m = f32x4.abs(v128.load(p));
  for (let i: usize = 16; i < 128; i += 16) m = f32x4.max(m, f32x4.abs(v128.load(p + i)));
  m = f32x4.max(m, i32x4.shuffle(m, m, 2, 3, 0, 1));
  return max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)) / 32767;
}

// 8 values at p times inv, rounded to i16: 4 column pairs.
// @ts-ignore: decorator
@inline function levels8(p: usize, inv: v128): v128 {
  const lo = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p), inv)));
  const hi = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 16), inv)));
  return i16x8.narrow_i32x4_s(lo, hi);
}

// Tokens [T, cols] f32 -> i16 per block of 32 with scale max/32767, laid out
// for tile8x4: per group of 4 tokens, per column pair, the 4 tokens' pairs
// (16 bytes), so one pointer and constant offsets reach all four; the block
// scales likewise, [group][block][4 tokens]. Tokens past T repeat the last.
function quantizeTokens(x: usize, q: usize, s: usize, cols: i32, T: i32): void {
  const nb = <usize>(cols >> 5);
  const rb = <usize>cols << 2;
  const last = x + <usize>(T - 1) * rb;
  for (let t = 0; t < T; t += 4) {
    const x0 = x + <usize>t * rb;
    const x1 = min(x0 + rb, last), x2 = min(x0 + 2 * rb, last), x3 = min(x0 + 3 * rb, last);
    const g = <usize>(t >> 2);
    const qg = q + g * (<usize>cols << 3);
    const sg = s + g * (nb << 4);
    for (let b: usize = 0; b < nb; b++) {
      const o = b << 7;
      let sc = f32x4.splat(blockStep(x0 + o));
      sc = f32x4.replace_lane(sc, 1, blockStep(x1 + o));
      sc = f32x4.replace_lane(sc, 2, blockStep(x2 + o));
      sc = f32x4.replace_lane(sc, 3, blockStep(x3 + o));
      v128.store(sg + (b << 4), sc);
      // 1 / scale, 0 for an all-zero block
      const inv = v128.and(f32x4.div(f32x4.splat(1), sc), f32x4.gt(sc, f32x4.splat(0)));
      const i0 = i32x4.shuffle(inv, inv, 0, 0, 0, 0), i1 = i32x4.shuffle(inv, inv, 1, 1, 1, 1);
      const i2 = i32x4.shuffle(inv, inv, 2, 2, 2, 2), i3 = i32x4.shuffle(inv, inv, 3, 3, 3, 3);
      const qb = qg + (b << 8); // 16 pairs of 16 bytes
      for (let i: usize = 0; i < 4; i++) {
        // pairs 4i..4i+3 of the four tokens, transposed to one vector per pair
        const a = levels8(x0 + o + (i << 5), i0), c = levels8(x1 + o + (i << 5), i1);
        const e = levels8(x2 + o + (i << 5), i2), h = levels8(x3 + o + (i << 5), i3);
        const ac0 = i32x4.shuffle(a, c, 0, 4, 1, 5), ac1 = i32x4.shuffle(a, c, 2, 6, 3, 7);
        const eh0 = i32x4.shuffle(e, h, 0, 4, 1, 5), eh1 = i32x4.shuffle(e, h, 2, 6, 3, 7);
        const d = qb + (i << 6);
        v128.store(d, i64x2.shuffle(ac0, eh0, 0, 2));
        v128.store(d, i64x2.shuffle(ac0, eh0, 1, 3), 16);
        v128.store(d, i64x2.shuffle(ac1, eh1, 0, 2), 32);
        v128.store(d, i64x2.shuffle(ac1, eh1, 1, 3), 48);
      }
    }
  }
}

// Row `r` of a Q8/Q4 matrix as cols i16 values into `out`, its cols/32 block
// scales into lane j of the panel's scale vectors (8 floats per block).
// The layout is read through formats.ts's accessors.
function unpackRow(fmt: i32, w: usize, cols: i32, r: i32, j: i32, out: usize, ws: usize): void {
  unpackRowI16(fmt, w, cols, r, out);
  const nb = cols >> 5;
  for (let b = 0; b < nb; b++) store<f32>(ws + (<usize>b << 5) + (<usize>j << 2), blockScale(fmt, w, cols, r, b));
}

// Rows r..r+7 (the last valid one repeated past r1) -> the panel: for each
// pair of columns (2p, 2p+1) 32 bytes, rows 0..7 as i16 pairs, so that one
// dot_i16x8_s with a token's pair broadcast yields 4 rows' partial sums.
function packPanel(fmt: i32, w: usize, cols: i32, r: i32, r1: i32, panel: usize, ws: usize, tmp: usize): void {
  const rowB = <usize>cols << 1;
  for (let j = 0; j < 8; j++) unpackRow(fmt, w, cols, min(r + j, r1 - 1), j, tmp + <usize>j * rowB, ws);
  interleave4(tmp, tmp + rowB, tmp + 2 * rowB, tmp + 3 * rowB, rowB, panel, 32);
  interleave4(tmp + 4 * rowB, tmp + 5 * rowB, tmp + 6 * rowB, tmp + 7 * rowB, rowB, panel + 16, 32);
}

// @ts-ignore: decorator
@inline function dotPair(acc: v128, wv: v128, x: v128): v128 {
  return i32x4.add(acc, i32x4.dot_i16x8_s(wv, x));
}

// 8 rows x 4 tokens: xg is one group of quantize-tokens' layout, sg its
// scales. Per column pair 2 panel loads and 4 broadcasts feed 8 dot
// products, all at constant offsets from two pointers. The float sums live in
// `acc` (8 vectors: token j's rows 0-3 then 4-7): in registers they would
// push the integer ones out.
function tile8x4(panel: usize, ws: usize, nb: i32, xg: usize, sg: usize, acc: usize): void {
  for (let i: usize = 0; i < 128; i += 16) v128.store(acc + i, f32x4.splat(0));
  let pp = panel, xp = xg;
  for (let b = 0; b < nb; b++) {
    let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
    let b0 = i32x4.splat(0), b1 = i32x4.splat(0), b2 = i32x4.splat(0), b3 = i32x4.splat(0);
    const end = pp + 512;
    while (pp < end) {
      const wa = v128.load(pp), wb = v128.load(pp, 16);
      let u = v128.load32_splat(xp);
      a0 = dotPair(a0, wa, u); b0 = dotPair(b0, wb, u);
      u = v128.load32_splat(xp, 4);
      a1 = dotPair(a1, wa, u); b1 = dotPair(b1, wb, u);
      u = v128.load32_splat(xp, 8);
      a2 = dotPair(a2, wa, u); b2 = dotPair(b2, wb, u);
      u = v128.load32_splat(xp, 12);
      a3 = dotPair(a3, wa, u); b3 = dotPair(b3, wb, u);
      const wc = v128.load(pp, 32), wd = v128.load(pp, 48);
      u = v128.load32_splat(xp, 16);
      a0 = dotPair(a0, wc, u); b0 = dotPair(b0, wd, u);
      u = v128.load32_splat(xp, 20);
      a1 = dotPair(a1, wc, u); b1 = dotPair(b1, wd, u);
      u = v128.load32_splat(xp, 24);
      a2 = dotPair(a2, wc, u); b2 = dotPair(b2, wd, u);
      u = v128.load32_splat(xp, 28);
      a3 = dotPair(a3, wc, u); b3 = dotPair(b3, wd, u);
      pp += 64;
      xp += 32;
    }
    const wo = ws + (<usize>b << 5);
    const wsa = v128.load(wo), wsb = v128.load(wo, 16);
    const so = sg + (<usize>b << 4);
    let sx = v128.load32_splat(so);
    v128.store(acc, madd(f32x4.convert_i32x4_s(a0), f32x4.mul(wsa, sx), v128.load(acc)));
    v128.store(acc, madd(f32x4.convert_i32x4_s(b0), f32x4.mul(wsb, sx), v128.load(acc, 16)), 16);
    sx = v128.load32_splat(so, 4);
    v128.store(acc, madd(f32x4.convert_i32x4_s(a1), f32x4.mul(wsa, sx), v128.load(acc, 32)), 32);
    v128.store(acc, madd(f32x4.convert_i32x4_s(b1), f32x4.mul(wsb, sx), v128.load(acc, 48)), 48);
    sx = v128.load32_splat(so, 8);
    v128.store(acc, madd(f32x4.convert_i32x4_s(a2), f32x4.mul(wsa, sx), v128.load(acc, 64)), 64);
    v128.store(acc, madd(f32x4.convert_i32x4_s(b2), f32x4.mul(wsb, sx), v128.load(acc, 80)), 80);
    sx = v128.load32_splat(so, 12);
    v128.store(acc, madd(f32x4.convert_i32x4_s(a3), f32x4.mul(wsa, sx), v128.load(acc, 96)), 96);
    v128.store(acc, madd(f32x4.convert_i32x4_s(b3), f32x4.mul(wsb, sx), v128.load(acc, 112)), 112);
  }
}

// xq: the tokens as quantizeTokens leaves them (then their scales).
function matMatInt(fmt: i32, w: usize, xq: usize, y: usize, cols: i32, ldy: i32, T: i32, accumulate: i32, scratch: usize, r0: i32, r1: i32): void {
  const nb = cols >> 5;
  const T4 = (T + 3) & ~3;
  const xs = xq + <usize>T4 * <usize>cols * 2;
  const panel = scratch;
  const ws = panel + (<usize>cols << 4);
  const tmp = ws + <usize>cols;
  const xgroup = <usize>cols << 3; // bytes of 4 quantized tokens
  const sgroup = <usize>nb << 4; // bytes of 4 tokens' scales
  for (let r = r0; r < r1; r += 8) {
    const nr = min(8, r1 - r);
    packPanel(fmt, w, cols, r, r1, panel, ws, tmp);
    for (let t = 0; t < T; t += 4) {
      const g = <usize>(t >> 2);
      tile8x4(panel, ws, nb, xq + g * xgroup, xs + g * sgroup, tmp);
      putTile(y, ldy, t, r, min(4, T - t), nr, tmp, accumulate);
    }
  }
}
