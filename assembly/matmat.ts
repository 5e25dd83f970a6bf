// Matrix-matrix products Y = X W^T for a chunk of T tokens (prefill). Each
// weight row is read once per chunk and reused for all T tokens while it
// sits in cache, which is what makes prefill compute-bound instead of
// bandwidth-bound.
//
// Every path runs the one register tile of 8 weight rows x 4 tokens (tile<T>
// below; the relaxed build's float path 8 x 6, tile6): the weights are
// repacked per 8 rows into a panel (for each column, column pair or column
// quad the 8 rows' values side by side; the float path PANELS panels at a
// time), the tokens per 4 into groups (prepareTokens, once per product,
// shared by the threads), so that the inner loop walks two pointers with
// constant offsets: 2 panel loads and 4 broadcasts feed 8 vector
// multiply-adds. Repacking costs O(rows x cols + T x cols) per chunk, next
// to the O(rows x cols x T) arithmetic.
//
// Float path (F32, F16): f32 multiply-adds (fused in the relaxed build).
// Integer path (INT_INPUT added to Q8/Q4): SIMD128 has no fused float
// multiply-add, so f32 costs a multiply and an add per 4 MACs, while
// i32x4.dot_i16x8_s does 8 MACs in one instruction. The tokens are quantized
// per block of 32 to i16 (scale max/32767, far finer than the weights' own
// steps), the weights expanded to i16 pairs in the panel.
// I8 path (I8_INPUT added to Q4, relaxed build only): see I8_INPUT.
//
// What bounds them (x64, V8 12 / Node 20, one thread, inner loop of this
// tile shape over L1-resident data): every multiply-add is 2 vector ALU
// operations (mul + add, or dot + add) on 3 ports, so f32 tops out at
// 6 MACs per cycle (13-14 GMAC/s measured), dot_i16x8_s at 12 (27-28);
// relaxed_madd 16, the relaxed i8 dot summed in i16 33. The tile reaches
// f32 ~95%, integer ~85%, I8 ~90% of these (the rest: block scales,
// repacking). Other tile shapes change loads per MAC, not ALU operations
// per MAC, and loads are not what bounds this loop; except the relaxed
// build's f32, whose fused multiply-add chains each accumulator through
// its whole latency (4 cycles, 2 issued per cycle): 8 accumulators leave no
// slack, so there the float path runs 8 rows x 6 tokens (tile6).
//
// Fewer multiplies (F32, F16: matMatStrassen, chosen by the host's
// src/cpu/matmat.ts strassenFits): with the tile near its peak, a large
// product runs as one level of Strassen's algorithm in Winograd's form, 7
// products of half the tokens, rows and columns instead of 8 (7/8 of the
// multiply-adds, on the same tile at the same rate), for sums of X's
// quarters (once per product, O(T x cols)), of W's (per block of panels,
// O(rows x cols)) and of the 7 results (O(T x rows)). Each product against
// the plain one, two threads, 512 tokens: metala-380m's [3072, 1024] and
// [5632, 1024] 1.10-1.13 times as fast, [1024, 1024] 1.07-1.08, [1024,
// 2816] 1.01-1.05 (its token sums cost the most); `metala bench` f32
// prefill on the means of two sets of 5 runs alternating with the build
// before 1.045 and 1.058 times as fast, 0.92 and 0.86 of the roofline that
// counts classical multiply-adds against 0.87 and 0.83.
//
// X is [T, cols] f32; output row r of token t goes to y[t * ldy + r].

import { madd } from "./simd";
import { FMT_F32, FMT_Q4, FMT_Q8, blockScale, rowBytes, unpackRowI16 } from "./formats";
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

// preparedBytes and matMatScratchBytes have a host twin in
// src/cpu/matmat-layout.ts (the memory plan is made before the kernels are
// instantiated); the kernel tests hold the two equal.

/** Bytes of prepareTokens' output for T tokens of cols. */
export function preparedBytes(fmt: i32, T: i32, cols: i32): usize {
  const c = <usize>cols, t = <usize>((T + 3) & ~3);
  if (fmt & I8_INPUT) return t * c + t * (c >> 5) * 8;
  return fmt & INT_INPUT ? t * c * 2 + t * (c >> 5) * 4 : t * c * 4;
}

/**
 * X [T, cols] f32 -> the tile layout of matMat's path for `fmt` (groups of 4
 * tokens; quantized for INT_INPUT and I8_INPUT) at dst. Done once per
 * product, so that the threads, taking row tiles in any number, share it.
 */
export function prepareTokens(fmt: i32, x: usize, cols: i32, T: i32, dst: usize): void {
  prepareTokenGroups(fmt, x, cols, T, dst, 0, T, 0);
}

/** prepareTokens for tokens [t0, t1) only (t0 a multiple of 4): the thread pool's form, split by groups of 4 tokens. */
export function prepareTokenGroups(fmt: i32, x: usize, cols: i32, T: i32, dst: usize, t0: i32, t1: i32, tid: i32): void {
  if (fmt & I8_INPUT) quantizeTokensI8(x, dst, dst + <usize>((T + 3) & ~3) * <usize>cols, cols, T, t0, t1);
  else if (fmt & INT_INPUT) quantizeTokens(x, dst, dst + <usize>((T + 3) & ~3) * (<usize>cols << 1), cols, T, t0, t1);
  else groupTokens(x, dst, cols, T, t0, t1);
}

/** matMat's scratch per thread, in bytes (the caller provides threads times this). */
export function matMatScratchBytes(fmt: i32, T: i32, cols: i32): usize {
  const c = <usize>cols;
  const own: usize = fmt & PREPARED ? 0 : preparedBytes(fmt, T, cols);
  if (fmt & I8_INPUT) return own + c * 8 + c + c * 2 + c * 8;
  if (fmt & INT_INPUT) return own + c * 16 + c + c * 16;
  // floats: room for a Strassen product's 6 blocks of panels of half the columns (matMatStrassen), then
  // for 8 rows a panel is made of when they are not the stored ones (F16's dequantized, a lower quarter
  // with its missing last row), later for the tile's sums
  return own + c * 32 * PANELS * 3 + max<usize>(192, c * 32);
}

/** The flags matMat runs a matrix stored in layout `fmt` with on this build: its fastest path. */
export function matMatFormat(fmt: i32): i32 {
  if (ASC_FEATURE_RELAXED_SIMD && fmt == FMT_Q4) return fmt | I8_INPUT;
  return fmt == FMT_Q8 || fmt == FMT_Q4 ? fmt | INT_INPUT : fmt;
}

/**
 * Y (+)= X W^T over weight rows [r0, r1) of a matrix stored in layout `fmt`
 * (F32, F16, or Q8/Q4 with INT_INPUT, Q4 with I8_INPUT in the relaxed
 * build: see matMatFormat; with PREPARED x comes from
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
  if (ASC_FEATURE_RELAXED_SIMD && fmt & I8_INPUT) matMatI8(f, w, tokens, y, cols, ldy, T, accumulate, mine, r0, r1);
  else if (fmt & INT_INPUT) matMatInt(f, w, tokens, y, cols, ldy, T, accumulate, mine, r0, r1);
  else matMatFloat(f, w, tokens, y, cols, ldy, T, accumulate, mine, r0, r1);
}

// Tokens [T, cols] f32 -> groups of 4 (the last repeating token T-1): per
// column the 4 tokens' values, 16 bytes.
function groupTokens(x: usize, q: usize, cols: i32, T: i32, t0: i32, t1: i32): void {
  const rb = <usize>cols << 2;
  for (let t = t0; t < t1; t += 4) {
    const r0 = x + <usize>t * rb;
    const last = x + <usize>(T - 1) * rb;
    const r1 = min(r0 + rb, last), r2 = min(r0 + 2 * rb, last), r3 = min(r0 + 3 * rb, last);
    interleave4(r0, r1, r2, r3, rb, q + <usize>t * rb, 16);
  }
}

// The multiply-add of a tile: on f32 lanes (fused in the relaxed build), on
// i16 pairs into i32 lanes (8 MACs per i32x4.dot_i16x8_s), or on i8 quads
// into i16 pairs (16 MACs per relaxed dot; T = i8, relaxed build only).
// probe.ts measures its peak rate.
// @ts-ignore: decorator
@inline export function mac<T>(acc: v128, w: v128, x: v128): v128 {
  // i8 tokens x weights in 0..15 (the 7-bit operand), pairs summed in i16 lanes
  if (sizeof<T>() == 1) return i16x8.add(acc, i16x8.relaxed_dot_i8x16_i7x16_s(x, w));
  if (isInteger<T>()) return i32x4.add(acc, i32x4.dot_i16x8_s(w, x));
  return madd(w, x, acc);
}

// The register tile of both paths, 8 weight rows x 4 tokens, over the panel
// steps [pp, end): each step is 32 bytes of panel (one column's 8 rows as
// f32, or one column pair's 8 rows as i16 pairs) against 16 bytes of a
// token group xp (the 4 tokens' f32, or i16 pairs): 2 panel loads and 4
// broadcasts feed 8 multiply-adds, at constant offsets from two pointers.
// Token j's sums of rows 0-3 / 4-7 go to out + 32j / + 32j + 16.
//
// The float path sums all columns in registers. The integer path sums one
// block of 32 columns (16 steps, two per iteration: measured 5% faster than
// one, despite the 8 broadcasts then not all fitting V8's 16 xmm registers)
// and adds it to `out` in f32, times its rows' weight scales (ws, 8 floats
// per block) and its tokens' scales (sx, 4 floats per block).
function tile<T>(pp: usize, end: usize, xp: usize, out: usize, ws: usize, sx: usize): void {
  const span: usize = sizeof<T>() == 1 ? 256 : isInteger<T>() ? 512 : end - pp;
  if (isInteger<T>()) for (let i: usize = 0; i < 128; i += 16) v128.store(out + i, f32x4.splat(0));
  while (pp < end) {
    let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
    let b0 = i32x4.splat(0), b1 = i32x4.splat(0), b2 = i32x4.splat(0), b3 = i32x4.splat(0);
    const stop = pp + span;
    while (pp < stop) {
      const wa = v128.load(pp), wb = v128.load(pp, 16);
      let u = v128.load32_splat(xp);
      a0 = mac<T>(a0, wa, u); b0 = mac<T>(b0, wb, u);
      u = v128.load32_splat(xp, 4);
      a1 = mac<T>(a1, wa, u); b1 = mac<T>(b1, wb, u);
      u = v128.load32_splat(xp, 8);
      a2 = mac<T>(a2, wa, u); b2 = mac<T>(b2, wb, u);
      u = v128.load32_splat(xp, 12);
      a3 = mac<T>(a3, wa, u); b3 = mac<T>(b3, wb, u);
      if (isInteger<T>()) {
        const wc = v128.load(pp, 32), wd = v128.load(pp, 48);
        u = v128.load32_splat(xp, 16);
        a0 = mac<T>(a0, wc, u); b0 = mac<T>(b0, wd, u);
        u = v128.load32_splat(xp, 20);
        a1 = mac<T>(a1, wc, u); b1 = mac<T>(b1, wd, u);
        u = v128.load32_splat(xp, 24);
        a2 = mac<T>(a2, wc, u); b2 = mac<T>(b2, wd, u);
        u = v128.load32_splat(xp, 28);
        a3 = mac<T>(a3, wc, u); b3 = mac<T>(b3, wd, u);
        pp += 32;
        xp += 16;
      }
      pp += 32;
      xp += 16;
    }
    if (sizeof<T>() == 1) {
      // i16 pair sums -> i32 per row, less the weights' offset of 8 times the token's sum (at sx + 16)
      const wsa = v128.load(ws), wsb = v128.load(ws, 16);
      let c = v128.load32_splat(sx, 16);
      addScaled(out, i32x4.sub(i32x4.extadd_pairwise_i16x8_s(a0), c), i32x4.sub(i32x4.extadd_pairwise_i16x8_s(b0), c), wsa, wsb, v128.load32_splat(sx));
      c = v128.load32_splat(sx, 20);
      addScaled(out + 32, i32x4.sub(i32x4.extadd_pairwise_i16x8_s(a1), c), i32x4.sub(i32x4.extadd_pairwise_i16x8_s(b1), c), wsa, wsb, v128.load32_splat(sx, 4));
      c = v128.load32_splat(sx, 24);
      addScaled(out + 64, i32x4.sub(i32x4.extadd_pairwise_i16x8_s(a2), c), i32x4.sub(i32x4.extadd_pairwise_i16x8_s(b2), c), wsa, wsb, v128.load32_splat(sx, 8));
      c = v128.load32_splat(sx, 28);
      addScaled(out + 96, i32x4.sub(i32x4.extadd_pairwise_i16x8_s(a3), c), i32x4.sub(i32x4.extadd_pairwise_i16x8_s(b3), c), wsa, wsb, v128.load32_splat(sx, 12));
      ws += 32;
      sx += 32;
    } else if (isInteger<T>()) {
      const wsa = v128.load(ws), wsb = v128.load(ws, 16);
      addScaled(out, a0, b0, wsa, wsb, v128.load32_splat(sx));
      addScaled(out + 32, a1, b1, wsa, wsb, v128.load32_splat(sx, 4));
      addScaled(out + 64, a2, b2, wsa, wsb, v128.load32_splat(sx, 8));
      addScaled(out + 96, a3, b3, wsa, wsb, v128.load32_splat(sx, 12));
      ws += 32;
      sx += 16;
    } else {
      v128.store(out, a0); v128.store(out, b0, 16);
      v128.store(out, a1, 32); v128.store(out, b1, 48);
      v128.store(out, a2, 64); v128.store(out, b2, 80);
      v128.store(out, a3, 96); v128.store(out, b3, 112);
    }
  }
}

// The relaxed build's float tile, 8 weight rows x 6 tokens: the 4 tokens of
// group xa and the first 2 at xb (a group, or a group + 8 bytes for its
// last 2), 12 accumulators for the fused multiply-add's 8 in flight (4
// cycles' latency x 2 per cycle). Token j < 4 (of xa) goes to out + 32j as
// tile's, the other two to out + 128 / + 160. 12 accumulators, 2 panel
// vectors and a broadcast fill 15 of V8's xmm registers, which is why
// SIMD128's separate multiply (a 16th register for the product) keeps the
// 8x4 tile: there this shape spills. One thread over L2-resident tokens,
// cols 256-2816, T 128: 27.4-27.8 GMAC/s against 24.7-25.5 for 8x4 (probe
// 28.3); SIMD128 14.4-14.8 against 21.8-22.5. (4 rows x 12 tokens, 14
// registers: 23.5-24.2 relaxed.)
function tile6(pp: usize, end: usize, xa: usize, xb: usize, out: usize): void {
  let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
  let b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0;
  while (pp < end) {
    const wa = v128.load(pp), wb = v128.load(pp, 16);
    let u = v128.load32_splat(xa);
    a0 = madd(wa, u, a0); b0 = madd(wb, u, b0);
    u = v128.load32_splat(xa, 4);
    a1 = madd(wa, u, a1); b1 = madd(wb, u, b1);
    u = v128.load32_splat(xa, 8);
    a2 = madd(wa, u, a2); b2 = madd(wb, u, b2);
    u = v128.load32_splat(xa, 12);
    a3 = madd(wa, u, a3); b3 = madd(wb, u, b3);
    u = v128.load32_splat(xb);
    a4 = madd(wa, u, a4); b4 = madd(wb, u, b4);
    u = v128.load32_splat(xb, 4);
    a5 = madd(wa, u, a5); b5 = madd(wb, u, b5);
    pp += 32;
    xa += 16;
    xb += 16;
  }
  v128.store(out, a0); v128.store(out, b0, 16);
  v128.store(out, a1, 32); v128.store(out, b1, 48);
  v128.store(out, a2, 64); v128.store(out, b2, 80);
  v128.store(out, a3, 96); v128.store(out, b3, 112);
  v128.store(out, a4, 128); v128.store(out, b4, 144);
  v128.store(out, a5, 160); v128.store(out, b5, 176);
}

// One token's integer sums of rows 0-3 (a) and 4-7 (b) onto its float sums
// at acc, times the rows' weight scales (wsa, wsb) and the token's scale s.
// @ts-ignore: decorator
@inline function addScaled(acc: usize, a: v128, b: v128, wsa: v128, wsb: v128, s: v128): void {
  v128.store(acc, madd(f32x4.convert_i32x4_s(a), f32x4.mul(wsa, s), v128.load(acc)));
  v128.store(acc, madd(f32x4.convert_i32x4_s(b), f32x4.mul(wsb, s), v128.load(acc, 16)), 16);
}

// Writes the 8 rows x nt tokens of a tile's float sums (at acc as tile leaves them).
function putTile(y: usize, ldy: i32, t: i32, r: i32, nt: i32, nr: i32, acc: usize, accumulate: i32): void {
  const yt = <usize>t * <usize>ldy + <usize>r;
  for (let j = 0; j < nt; j++) {
    const yj = yt + <usize>j * <usize>ldy;
    putRows(y, yj, v128.load(acc + (<usize>j << 5)), nr, accumulate);
    putRows(y, yj + 4, v128.load(acc + (<usize>j << 5), 16), nr - 4, accumulate);
  }
}

// Weight rows per block of matMatFloat: PANELS panels of 8 rows, packed
// first, then each step of tokens run against all of them, so that a step's
// token groups are read from L1/L2 PANELS times instead of the whole chunk's
// tokens (1-3 MB at T 256, past L2) coming from L3 once per panel, with
// both threads doing so at once. Two threads, the 24 layers' l1|l2 products
// of metala-380m at T 256 (relaxed build): 24.5-24.9 GMAC/s per thread
// against 23.2-23.6 panel by panel (probe 26.3-27.0); 8 panels measured the
// same (the pool's tiles are 32 rows, src/cpu/forward.ts MATMAT_TILE). The host twin of
// matMatScratchBytes (src/cpu/matmat-layout.ts) sizes the float scratch
// with it too.
const PANELS: i32 = 4;

// The panel of weight rows r..r+7 in the block of PANELS panels starting at row rb0.
// @ts-ignore: decorator
@inline function panelAt(scratch: usize, r: i32, rb0: i32, pb: usize): usize {
  return scratch + <usize>((r - rb0) >> 3) * pb;
}

// xg: the tokens as groupTokens leaves them.
function matMatFloat(fmt: i32, w: usize, xg: usize, y: usize, cols: i32, ldy: i32, T: i32, accumulate: i32, scratch: usize, r0: i32, r1: i32): void {
  const room = scratch + <usize>PANELS * (<usize>cols << 5); // see matMatScratchBytes
  for (let rb0 = r0; rb0 < r1; rb0 += 8 * PANELS) {
    const rbEnd = min(r1, rb0 + 8 * PANELS);
    packPanels(fmt, w, 0, cols, WHOLE, rb0, rbEnd, scratch, room);
    runPanels(scratch, xg, y, cols, ldy, T, accumulate, rb0, rbEnd, room);
  }
}

// Weight rows [r0, r1) (at most PANELS panels) of the whole matrix w
// [rows, ldw] or of quarter q of it (a Strassen product's: ldw / 2
// columns) -> panels of 8 rows from `panels` on (see tile).
function packPanels(fmt: i32, w: usize, rows: i32, ldw: i32, q: i32, r0: i32, r1: i32, panels: usize, room: usize): void {
  const wb = <usize>ldw << 2; // bytes between two rows of weightRows' output
  const cols = q == WHOLE ? ldw : ldw >> 1;
  const pb = <usize>cols << 5;
  for (let r = r0; r < r1; r += 8) {
    const nr = min(8, r1 - r);
    const panel = panelAt(panels, r, r0, pb);
    const base = weightRows(fmt, w, rows, ldw, q, r, nr, room);
    const last = <usize>(nr - 1);
    for (let h: usize = 0; h < 2; h++) {
      const j = h << 2;
      interleave4(base + min(j, last) * wb, base + min(j + 1, last) * wb, base + min(j + 2, last) * wb, base + min(j + 3, last) * wb, <usize>cols << 2, panel + (h << 4), 32);
    }
  }
}

// Y (+)= the T tokens of xg (cols each) against the panels of weight rows
// [r0, r1) from `panels` on; acc: 192 bytes for a tile's sums.
function runPanels(panels: usize, xg: usize, y: usize, cols: i32, ldy: i32, T: i32, accumulate: i32, r0: i32, r1: i32, acc: usize): void {
  const rb = <usize>cols << 2;
  const pb = <usize>cols << 5;
  let t = 0;
  // relaxed build: 12 tokens (3 groups) as two 6-token tiles, tokens t..t+5 then t+8..t+11 and t+6, t+7 (a group's 4 bytes per token)
  if (ASC_FEATURE_RELAXED_SIMD)
    for (; t + 12 <= T; t += 12) {
      const xa = xg + <usize>t * rb, xb = xa + (rb << 2);
      for (let r = r0; r < r1; r += 8) {
        const nr = min(8, r1 - r);
        const panel = panelAt(panels, r, r0, pb);
        tile6(panel, panel + pb, xa, xb, acc);
        putTile(y, ldy, t, r, 4, nr, acc, accumulate);
        putTile(y, ldy, t + 4, r, 2, nr, acc + 128, accumulate);
        tile6(panel, panel + pb, xb + (rb << 2), xb + 8, acc);
        putTile(y, ldy, t + 8, r, 4, nr, acc, accumulate);
        putTile(y, ldy, t + 6, r, 2, nr, acc + 128, accumulate);
      }
    }
  for (; t < T; t += 4)
    for (let r = r0; r < r1; r += 8) {
      const panel = panelAt(panels, r, r0, pb);
      tile<f32>(panel, panel + pb, xg + <usize>t * rb, acc, 0, 0);
      putTile(y, ldy, t, r, min(4, T - t), min(8, r1 - r), acc, accumulate);
    }
}

// Strassen's algorithm, one level, in Winograd's form (7 products, 15
// additions; see the header): Y = X W^T with X's tokens and columns and W's
// rows and columns halved. Quarters are numbered 11, 12, 21, 22 (first
// index the token or weight-row half, second the column half); an odd
// count's upper half is the larger one, the lower half's missing token or
// row read as zeros. In terms of Y = A B (A = X, B = W^T, so B's quarter ij
// is W's ji), with
//   S1 = A21 + A22, S2 = S1 - A11, S3 = A11 - A21, S4 = A12 - S2,
//   T1 = B12 - B11, T2 = B22 - T1, T3 = B22 - B12, T4 = T2 - B21,
//   M1 = A11 B11, M2 = A12 B21, M3 = S4 B22, M4 = A22 T4,
//   M5 = S1 T1, M6 = S2 T2, M7 = S3 T3:
//   C11 = M1 + M2, C12 = M1 + M6 + M5 + M3,
//   C21 = M1 + M6 + M7 - M4, C22 = M1 + M6 + M7 + M5.
// The token sums are formed once per product (prepareStrassenTokens), the
// weight sums per block of panels, from the quarters' panels (matMatStrassen),
// never stored whole.

// A set of X's quarters, each added (1) or subtracted (-1), 2 bits each (11 at bit 0 ... 22 at bit 6).
// @ts-ignore: decorator
@inline function quarters(q11: i32, q12: i32, q21: i32, q22: i32): i32 {
  return (q11 & 3) | ((q12 & 3) << 2) | ((q21 & 3) << 4) | ((q22 & 3) << 6);
}

// Quarter b's (0..3: 11, 12, 21, 22) sign in a set: 1, -1 or 0 (absent).
// @ts-ignore: decorator
@inline function sign(set: i32, b: i32): i32 {
  const v = (set >> (b << 1)) & 3;
  return v == 3 ? -1 : v;
}

// The token operand of M(p + 1).
function strassenTokens(p: i32): i32 {
  switch (p) {
    case 0: return quarters(1, 0, 0, 0); // A11
    case 1: return quarters(0, 1, 0, 0); // A12
    case 2: return quarters(1, 1, -1, -1); // S4
    case 3: return quarters(0, 0, 0, 1); // A22
    case 4: return quarters(0, 0, 1, 1); // S1
    case 5: return quarters(-1, 0, 1, 1); // S2
    default: return quarters(1, 0, -1, 0); // S3
  }
}

// packPanels' q: W's quarters 11, 12, 21, 22 (0-3), or the whole matrix.
const WHOLE: i32 = 4;

// dst (n bytes) = the sum of the quarters in `set`, quarter b at
// (b < 2 ? top : bottom) + (b & 1) * kb; a 0 for top or bottom: a row past
// the matrix, zeros.
function sumQuarters(set: i32, top: usize, bottom: usize, kb: usize, n: usize, dst: usize): void {
  let first = true;
  for (let b = 0; b < 4; b++) {
    const s = sign(set, b);
    const row = b < 2 ? top : bottom;
    if (s == 0 || row == 0) continue;
    const src = row + <usize>(b & 1) * kb;
    const flip = i32x4.splat(s < 0 ? i32.MIN_VALUE : 0); // the sign bit: negation, exactly
    for (let o: usize = 0; o < n; o += 16) {
      const v = v128.xor(v128.load(src + o), flip);
      v128.store(dst + o, first ? v : f32x4.add(v128.load(dst + o), v));
    }
    first = false;
  }
  if (first) memory.fill(dst, 0, n);
}

// Rows r..r+nr-1 of the whole matrix (q WHOLE) or of quarter q as f32,
// ldw floats apart: the stored ones (F32), or in room: dequantized (F16,
// the quarter's columns only), a lower quarter's missing last row as
// zeros. Returns the first row.
function weightRows(fmt: i32, w: usize, rows: i32, ldw: i32, q: i32, r: i32, nr: i32, room: usize): usize {
  const rb = <usize>ldw << 2;
  const upper = q == WHOLE || q < 2;
  const first = upper ? r : ((rows + 1) >> 1) + r;
  const n = upper ? nr : min(nr, rows - first); // rows there are
  const cols = q == WHOLE ? ldw : ldw >> 1, c0 = q == WHOLE ? 0 : (q & 1) * cols; // the columns
  let base = w + <usize>first * rb + (<usize>c0 << 2);
  if (fmt != FMT_F32) {
    if (q == WHOLE) dequantizeRows(fmt, w, ldw, first, first + n, room);
    else {
      // F16 (Strassen's only other format): each row's quarter as a row of its own
      const sb = rowBytes(fmt, ldw), cb = rowBytes(fmt, c0);
      for (let j = 0; j < n; j++) dequantizeRows(fmt, w + <usize>(first + j) * sb + cb, cols, 0, 1, room + <usize>j * rb);
    }
    base = room;
  } else if (n < nr) for (let j = 0; j < n; j++) memory.copy(room + <usize>j * rb, base + <usize>j * rb, <usize>cols << 2);
  if (n < nr) {
    memory.fill(room + <usize>n * rb, 0, <usize>(nr - n) * rb);
    base = room;
  }
  return base;
}

// dst = a + b, or a - b (negate), over n bytes of panels.
function sumPanels(dst: usize, a: usize, b: usize, negate: bool, n: usize): void {
  for (let o: usize = 0; o < n; o += 16)
    v128.store(dst + o, negate ? f32x4.sub(v128.load(a + o), v128.load(b + o)) : f32x4.add(v128.load(a + o), v128.load(b + o)));
}

/**
 * The 7 token operands of a Strassen product over X [T, cols] f32 (cols a
 * multiple of 8), each [ceil(T / 2), cols / 2] in the float path's token
 * layout, one after another (preparedBytes(FMT_F32, ceil(T / 2), cols / 2)
 * apart): tokens [t0, t1) of the half (t0 a multiple of 4), the pool's form.
 * `scratch`: threads x matMatScratchBytes(FMT_F32 | PREPARED, T, cols).
 */
export function prepareStrassenTokens(x: usize, cols: i32, T: i32, dst: usize, scratch: usize, t0: i32, t1: i32, tid: i32): void {
  const half = (T + 1) >> 1;
  const rb = <usize>cols << 2, kb = rb >> 1;
  const rows = scratch + <usize>tid * matMatScratchBytes(FMT_F32 | PREPARED, T, cols); // 4 token rows of an operand
  const size = preparedBytes(FMT_F32, half, cols >> 1);
  // group by group, each group's rows read from memory once for all 7 (operand by operand: 3.5 times)
  for (let t = t0; t < t1; t += 4)
    for (let p = 0; p < 7; p++) {
      const set = strassenTokens(p);
      for (let i = 0; i < 4; i++) {
        const u = t + i; // the group's last tokens past the half: zeros, their outputs never written
        sumQuarters(set, u < half ? x + <usize>u * rb : 0, half + u < T ? x + <usize>(half + u) * rb : 0, kb, kb, rows + <usize>i * kb);
      }
      interleave4(rows, rows + kb, rows + 2 * kb, rows + 3 * kb, kb, dst + <usize>p * size + <usize>t * kb, 16);
    }
}

/** Weight rows (of ceil(rows / 2)) matMatStrassen runs all 7 products for at a time: a block of PANELS panels. */
export const STRASSEN_ROWS: i32 = 8 * PANELS;

/** Bytes of one thread's temps of matMatStrassen: the 7 products for STRASSEN_ROWS rows and T tokens. */
export function strassenTempsBytes(T: i32): usize {
  return 7 * <usize>((T + 1) >> 1) * <usize>STRASSEN_ROWS * 4;
}

/**
 * Y [T, rows] (+)= X W^T as a Strassen product over the product's weight
 * rows [r0, r1) (of ceil(rows / 2); r0 a multiple of 8), w F32 or F16
 * (cols a multiple of 16), x prepareStrassenTokens' operands. For every
 * STRASSEN_ROWS rows: the 4
 * quarters' panels, packed once, give M1-M3 and, summed panel by panel
 * (T1, T3, T2 = T3 + B11, T4 = T2 - B21), M4-M7, all into this thread's
 * temps (`temps`: threads x strassenTempsBytes); then Winograd's sums of
 * them into Y's four quarters (combineStrassen). So the quarters' rows come
 * from memory once, the temps stay in cache, and Y is written once.
 * `scratch` as matMat's. Returns combineStrassen's xor (see AHEAD).
 */
export function matMatStrassen(fmt: i32, w: usize, rows: i32, cols: i32, x: usize, y: usize, ldy: i32, T: i32, accumulate: i32, temps: usize, scratch: usize, r0: i32, r1: i32, tid: i32): i32 {
  const mine = scratch + <usize>tid * matMatScratchBytes(fmt | PREPARED, T, cols);
  const m = temps + <usize>tid * strassenTempsBytes(T);
  const half = (T + 1) >> 1, kc = cols >> 1;
  const n2 = rows - ((rows + 1) >> 1); // rows of the lower quarters
  const temp = <usize>half * <usize>STRASSEN_ROWS * 4;
  const set = <usize>PANELS * (<usize>kc << 5); // bytes of a block's panels
  const B11 = mine, B21 = B11 + set, B12 = B21 + set, B22 = B12 + set, U = B22 + set, V = U + set; // W's quarters 11, 12, 21, 22 (B's ij is W's ji)
  const room = V + set;
  let ahead = 0;
  for (let c0 = r0; c0 < r1; c0 += STRASSEN_ROWS) {
    const c1 = min(r1, c0 + STRASSEN_ROWS);
    const n = <usize>((c1 - c0 + 7) >> 3) * (<usize>kc << 5); // bytes of this block's panels
    // row r of M(p + 1) at m + p * temp + (r - c0) * 4 (y wraps around below m: the kernel adds r * 4 back)
    const at = m - (<usize>c0 << 2);
    packPanels(fmt, w, rows, cols, 0, c0, c1, B11, room);
    packPanels(fmt, w, rows, cols, 1, c0, c1, B21, room);
    packPanels(fmt, w, rows, cols, 2, c0, c1, B12, room);
    packPanels(fmt, w, rows, cols, 3, c0, c1, B22, room);
    strassenProduct(0, B11, x, at, T, kc, c0, c1, room);
    strassenProduct(1, B21, x, at, T, kc, c0, c1, room);
    strassenProduct(2, B22, x, at, T, kc, c0, min(c1, n2), room); // M3's rows are the lower quarter's
    sumPanels(U, B12, B11, true, n); // T1
    strassenProduct(4, U, x, at, T, kc, c0, c1, room);
    sumPanels(V, B22, B12, true, n); // T3
    strassenProduct(6, V, x, at, T, kc, c0, c1, room);
    sumPanels(U, V, B11, false, n); // T2
    strassenProduct(5, U, x, at, T, kc, c0, c1, room);
    sumPanels(V, U, B21, true, n); // T4
    strassenProduct(3, V, x, at, T, kc, c0, c1, room);
    ahead ^= combineStrassen(m, temp, y, ldy, T, rows, accumulate, c0, c1);
  }
  return ahead;
}

// M(p + 1) for the weight rows [c0, c1) of a block: token operand p of x
// (kc columns) against `panels`, into its temp (row r at at + p x a temp's
// bytes + r * 4); M4's of the lower tokens only.
function strassenProduct(p: i32, panels: usize, x: usize, at: usize, T: i32, kc: i32, c0: i32, c1: i32, room: usize): void {
  const half = (T + 1) >> 1;
  const temp = <usize>half * <usize>STRASSEN_ROWS * 4;
  runPanels(panels, x + <usize>p * preparedBytes(FMT_F32, half, kc), at + <usize>p * temp, kc, STRASSEN_ROWS, p == 3 ? T - half : half, 0, c0, c1, room);
}

// Tokens ahead whose lines of Y combineStrassen loads before it writes
// them: a token's 4 quarters are 4-8 lines of their own (ldy floats apart),
// each a miss that the tiles of a plain product hide behind their
// arithmetic but this pass, all loads and stores, would wait for one after
// another. [3072, 1024] at 512 tokens: Strassen 1.11 times as fast as the
// plain product with them, 1.05 without.
const AHEAD: i32 = 4;

// Y (+)= Winograd's sums of the temps M1..M7 (`temp` bytes apart, token
// rows STRASSEN_ROWS floats apart, column 0 being Y's column c0 of each
// quarter) into columns [c0, c1) of Y's four quarters (of the lower ones
// those there are), for every token of the upper half and its twin of the
// lower one (if there is one). Returns the xor of the words it loads ahead
// (see AHEAD), so that the loads are kept.
function combineStrassen(m: usize, temp: usize, y: usize, ldy: i32, T: i32, rows: i32, accumulate: i32, c0: i32, c1: i32): i32 {
  const half = (T + 1) >> 1;
  const nh = (rows + 1) >> 1, c2 = min(c1, rows - nh);
  const q = <usize>nh << 2, line = <usize>(c1 - c0 > 16 ? 64 : 0); // a quarter's offset; a block's second line
  let ahead = 0;
  for (let t = 0; t < half; t++) {
    if (t + AHEAD < half) ahead ^= touchRow(y + (<usize>(t + AHEAD) * <usize>ldy + <usize>c0) * 4, q, line);
    if (half + t + AHEAD < T) ahead ^= touchRow(y + (<usize>(half + t + AHEAD) * <usize>ldy + <usize>c0) * 4, q, line);
    const m1 = m + <usize>t * STRASSEN_ROWS * 4;
    const y1 = y + <usize>t * <usize>ldy * 4, y2 = y + <usize>(half + t) * <usize>ldy * 4;
    const lower = half + t < T;
    for (let k = c0; k < c1; k += 4) {
      const o = m1 + (<usize>(k - c0) << 2);
      const M1 = v128.load(o), M2 = v128.load(o + temp), M3 = v128.load(o + 2 * temp), M4 = v128.load(o + 3 * temp);
      const M5 = v128.load(o + 4 * temp), M6 = v128.load(o + 5 * temp), M7 = v128.load(o + 6 * temp);
      const u2 = f32x4.add(M1, M6), u3 = f32x4.add(u2, M7);
      putRows(y1, k, f32x4.add(M1, M2), c1 - k, accumulate);
      putRows(y1 + <usize>nh * 4, k, f32x4.add(f32x4.add(u2, M5), M3), c2 - k, accumulate);
      if (!lower) continue;
      putRows(y2, k, f32x4.sub(u3, M4), c1 - k, accumulate);
      putRows(y2 + <usize>nh * 4, k, f32x4.add(u3, M5), c2 - k, accumulate);
    }
  }
  return ahead;
}

// A word of each line a token's block writes in both column quarters (p, then q bytes on).
// @ts-ignore: decorator
@inline function touchRow(p: usize, q: usize, line: usize): i32 {
  return load<i32>(p) ^ load<i32>(p + line) ^ load<i32>(p + q) ^ load<i32>(p + q + line);
}

/** Added to FMT_Q8 / FMT_Q4: quantize the tokens and multiply on integers. */
export const INT_INPUT: i32 = 16;

// One token's block of 32 (at p) -> its scale max|x| / levels.
// @ts-ignore: decorator
@inline function blockStep(p: usize, levels: f32): f32 {
  let m = f32x4.abs(v128.load(p));
  for (let i: usize = 16; i < 128; i += 16) m = f32x4.max(m, f32x4.abs(v128.load(p + i)));
  m = f32x4.max(m, i32x4.shuffle(m, m, 2, 3, 0, 1));
  return max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)) / levels;
}

// The block scales of 4 tokens (rows at x0..x3, block at byte offset o),
// max|x| / levels each, and their inverses (0 for an all-zero block) splat
// per token: what both token quantizers start every block with.
// @ts-ignore: decorator
@inline function blockScales4(x0: usize, x1: usize, x2: usize, x3: usize, o: usize, levels: f32): v128 {
  let sc = f32x4.splat(blockStep(x0 + o, levels));
  sc = f32x4.replace_lane(sc, 1, blockStep(x1 + o, levels));
  sc = f32x4.replace_lane(sc, 2, blockStep(x2 + o, levels));
  return f32x4.replace_lane(sc, 3, blockStep(x3 + o, levels));
}

// 1 / scale per lane, 0 for an all-zero block.
// @ts-ignore: decorator
@inline function inverseScales(sc: v128): v128 {
  return v128.and(f32x4.div(f32x4.splat(1), sc), f32x4.gt(sc, f32x4.splat(0)));
}

// 8 values at p times inv, rounded to i16: 4 column pairs.
// @ts-ignore: decorator
@inline function levels8(p: usize, inv: v128): v128 {
  const lo = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p), inv)));
  const hi = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 16), inv)));
  return i16x8.narrow_i32x4_s(lo, hi);
}

// Four tokens' vectors of four i32 lanes (a, c, e, h), stored at d as four
// vectors, one per lane index: lane k of each token side by side.
// @ts-ignore: decorator
@inline function storeTransposed4(d: usize, a: v128, c: v128, e: v128, h: v128): void {
  const ac0 = i32x4.shuffle(a, c, 0, 4, 1, 5), ac1 = i32x4.shuffle(a, c, 2, 6, 3, 7);
  const eh0 = i32x4.shuffle(e, h, 0, 4, 1, 5), eh1 = i32x4.shuffle(e, h, 2, 6, 3, 7);
  v128.store(d, i64x2.shuffle(ac0, eh0, 0, 2));
  v128.store(d, i64x2.shuffle(ac0, eh0, 1, 3), 16);
  v128.store(d, i64x2.shuffle(ac1, eh1, 0, 2), 32);
  v128.store(d, i64x2.shuffle(ac1, eh1, 1, 3), 48);
}

// Tokens [T, cols] f32 -> i16 per block of 32 with scale max/32767, laid out
// for the tile: per group of 4 tokens, per column pair, the 4 tokens' pairs
// (16 bytes), so one pointer and constant offsets reach all four; the block
// scales likewise, [group][block][4 tokens]. Tokens past T repeat the last.
function quantizeTokens(x: usize, q: usize, s: usize, cols: i32, T: i32, t0: i32, t1: i32): void {
  const nb = <usize>(cols >> 5);
  const rb = <usize>cols << 2;
  const last = x + <usize>(T - 1) * rb;
  for (let t = t0; t < t1; t += 4) {
    const x0 = x + <usize>t * rb;
    const x1 = min(x0 + rb, last), x2 = min(x0 + 2 * rb, last), x3 = min(x0 + 3 * rb, last);
    const g = <usize>(t >> 2);
    const qg = q + g * (<usize>cols << 3);
    const sg = s + g * (nb << 4);
    for (let b: usize = 0; b < nb; b++) {
      const o = b << 7;
      const sc = blockScales4(x0, x1, x2, x3, o, 32767);
      v128.store(sg + (b << 4), sc);
      const inv = inverseScales(sc);
      const i0 = i32x4.shuffle(inv, inv, 0, 0, 0, 0), i1 = i32x4.shuffle(inv, inv, 1, 1, 1, 1);
      const i2 = i32x4.shuffle(inv, inv, 2, 2, 2, 2), i3 = i32x4.shuffle(inv, inv, 3, 3, 3, 3);
      const qb = qg + (b << 8); // 16 pairs of 16 bytes
      for (let i: usize = 0; i < 4; i++) {
        // pairs 4i..4i+3 of the four tokens, transposed to one vector per pair
        const a = levels8(x0 + o + (i << 5), i0), c = levels8(x1 + o + (i << 5), i1);
        const e = levels8(x2 + o + (i << 5), i2), h = levels8(x3 + o + (i << 5), i3);
        storeTransposed4(qb + (i << 6), a, c, e, h);
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
      tile<i32>(panel, panel + (<usize>cols << 4), xq + g * xgroup, tmp, ws, xs + g * sgroup);
      putTile(y, ldy, t, r, min(4, T - t), nr, tmp, accumulate);
    }
  }
}

/**
 * Added to FMT_Q4 in the relaxed build (matMatFormat): the tokens quantized
 * to i8 per block of 32 (scale max/127, as the mat-vec quantizes its input),
 * the weights stored as q + 8 in 0..15, multiplied by
 * i16x8.relaxed_dot_i8x16_i7x16_s (16 MACs per instruction, the weights as
 * its 7-bit operand, so every engine computes it exactly). A pair of
 * products is at most 2 * 15 * 127, so a whole block (8 steps) sums in i16
 * lanes without overflow; then 8 times the token's sum is taken off.
 * (Measured, one thread, 2048 x 1024 x 128: 30 GMAC/s against 22 for the
 * i16 path, same run; the q8 weights, -127..127, cannot be the 7-bit operand,
 * and 7-bit tokens would be coarser than the mat-vec's, so Q8 stays on i16.)
 */
export const I8_INPUT: i32 = 64;

// 16 values at p times inv, rounded to i8 (|level| <= 127), and their sum into *sum.
// @ts-ignore: decorator
@inline function levels16(p: usize, inv: v128, sum: usize): v128 {
  const a = levels8(p, inv), b = levels8(p + 32, inv);
  const s = i32x4.add(i32x4.extadd_pairwise_i16x8_s(a), i32x4.extadd_pairwise_i16x8_s(b));
  store<i32>(sum, load<i32>(sum) + i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3));
  return i8x16.narrow_i16x8_s(a, b);
}

// Tokens [T, cols] f32 -> i8 per block of 32 with scale max/127, laid out
// for tile<i8>: per group of 4 tokens, per 4 columns, the 4 tokens' 4 bytes
// (16 bytes); per group and block 32 bytes at s: the 4 scales, then 8 times
// each token's sum of levels (i32). Tokens past T repeat the last.
function quantizeTokensI8(x: usize, q: usize, s: usize, cols: i32, T: i32, t0: i32, t1: i32): void {
  const nb = <usize>(cols >> 5);
  const rb = <usize>cols << 2;
  const last = x + <usize>(T - 1) * rb;
  for (let t = t0; t < t1; t += 4) {
    const x0 = x + <usize>t * rb;
    const x1 = min(x0 + rb, last), x2 = min(x0 + 2 * rb, last), x3 = min(x0 + 3 * rb, last);
    const g = <usize>(t >> 2);
    const qg = q + g * (<usize>cols << 2);
    const sg = s + g * (nb << 5);
    for (let b: usize = 0; b < nb; b++) {
      const o = b << 7;
      const sb = sg + (b << 5);
      const sc = blockScales4(x0, x1, x2, x3, o, 127);
      v128.store(sb, sc);
      v128.store(sb, i32x4.splat(0), 16);
      const inv = inverseScales(sc);
      const i0 = i32x4.shuffle(inv, inv, 0, 0, 0, 0), i1 = i32x4.shuffle(inv, inv, 1, 1, 1, 1);
      const i2 = i32x4.shuffle(inv, inv, 2, 2, 2, 2), i3 = i32x4.shuffle(inv, inv, 3, 3, 3, 3);
      const qb = qg + (b << 7); // 8 steps of 16 bytes
      for (let i: usize = 0; i < 2; i++) {
        // columns 16i..16i+15 of the four tokens, transposed to one vector per 4 columns
        const a = levels16(x0 + o + (i << 6), i0, sb + 16), c = levels16(x1 + o + (i << 6), i1, sb + 20);
        const e = levels16(x2 + o + (i << 6), i2, sb + 24), h = levels16(x3 + o + (i << 6), i3, sb + 28);
        storeTransposed4(qb + (i << 6), a, c, e, h);
      }
      v128.store(sb, i32x4.shl(v128.load(sb, 16), 3), 16);
    }
  }
}

// Rows r..r+7 of a Q4 matrix (the last valid one repeated past r1) -> the
// panel of tile<i8>: per 4 columns 32 bytes, rows 0..7's 4 weights as q + 8.
function packPanelI8(fmt: i32, w: usize, cols: i32, r: i32, r1: i32, panel: usize, ws: usize, tmp: usize): void {
  const rowB = <usize>cols;
  const row16 = tmp + 8 * rowB;
  for (let j = 0; j < 8; j++) {
    unpackRow(fmt, w, cols, min(r + j, r1 - 1), j, row16, ws);
    const dst = tmp + <usize>j * rowB;
    for (let i: usize = 0; i < rowB; i += 16) {
      const lo = i16x8.add(v128.load(row16 + (i << 1)), i16x8.splat(8));
      const hi = i16x8.add(v128.load(row16 + (i << 1), 16), i16x8.splat(8));
      v128.store(dst + i, i8x16.narrow_i16x8_u(lo, hi));
    }
  }
  interleave4(tmp, tmp + rowB, tmp + 2 * rowB, tmp + 3 * rowB, rowB, panel, 32);
  interleave4(tmp + 4 * rowB, tmp + 5 * rowB, tmp + 6 * rowB, tmp + 7 * rowB, rowB, panel + 16, 32);
}

// xq: the tokens as quantizeTokensI8 leaves them (then their scales and sums).
function matMatI8(fmt: i32, w: usize, xq: usize, y: usize, cols: i32, ldy: i32, T: i32, accumulate: i32, scratch: usize, r0: i32, r1: i32): void {
  const nb = cols >> 5;
  const T4 = (T + 3) & ~3;
  const xs = xq + <usize>T4 * <usize>cols;
  const panel = scratch;
  const ws = panel + (<usize>cols << 3);
  const tmp = ws + <usize>cols;
  const xgroup = <usize>cols << 2; // bytes of 4 quantized tokens
  const sgroup = <usize>nb << 5; // bytes of 4 tokens' scales and sums
  for (let r = r0; r < r1; r += 8) {
    const nr = min(8, r1 - r);
    packPanelI8(fmt, w, cols, r, r1, panel, ws, tmp);
    for (let t = 0; t < T; t += 4) {
      const g = <usize>(t >> 2);
      tile<i8>(panel, panel + (<usize>cols << 3), xq + g * xgroup, tmp, ws, xs + g * sgroup);
      putTile(y, ldy, t, r, min(4, T - t), nr, tmp, accumulate);
    }
  }
}
