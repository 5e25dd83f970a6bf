// Storage formats of weight matrices in linear memory. Matrices that share
// an input (q, k_gate, v, g; l1, l2) are concatenated by rows at load.
// assembly/quantize.ts writes these layouts; the accessors at the end of
// this file are the only other readers outside matvec.ts, so that a layout
// change stays between these files.
//
//   F32: cols f32 per row, rows one after another.
//   F16: cols f16 per row; inside each group of 8 the order is
//        w0 w4 w1 w5 w2 w6 w3 w7, so that one 128-bit load splits into
//        w0..3 and w4..7 with a mask and a shift (see decodeF16 in matvec.ts).
//
// Q8 and Q4 store rows in quads: rows 4g..4g+3 share one stretch of memory
// (a matrix's last quad is padded to four rows), block by block of 32
// columns. One quad-block is the four rows' f32 scales (w = q * scale), then
// the quantized weights interleaved by row in 4-byte pieces, so that one
// 128-bit load holds a piece of each of the four rows and a dot product's
// four i32 lanes are the four rows: no horizontal sums, one vector of
// scales per block, and a quad is one long sequential stream, which the
// hardware prefetcher follows much further than short rows (measured: a
// 1152-byte q8 row per stream streamed at half the speed of quads).
//
//   Q8 quad-block, 144 bytes: scales, then 8 vectors; vector k holds in
//      bytes 4i..4i+3 the weights of row i, columns 4k..4k+3 (q in
//      [-127, 127]): the odd columns as int8, the even ones as the byte
//      q + 128. Read as i16 lanes, a lane is then exactly
//      256 * q_odd + (q_even + 128), linear in both weights, so the
//      mat-vec multiplies the lane as it is loaded plus one masked copy
//      (see matvec-quant.ts); xor with EVEN_BIAS gives plain int8.
//   Q4 quad-block, 80 bytes: scales, then 4 vectors; byte 4i+m of vector k
//      holds row i's columns 8k+m (low nibble) and 8k+4+m (high nibble),
//      4-bit two's complement (q in [-8, 7]).
//
// A quad of `cols` columns takes 4 * rowBytes(fmt, cols) bytes.

export const FMT_F32: i32 = 0;
export const FMT_F16: i32 = 1;
export const FMT_Q8: i32 = 2;
export const FMT_Q4: i32 = 3;

/** Bytes of one stored row of `cols` weights (for Q8/Q4: a quarter of a quad). */
export function rowBytes(fmt: i32, cols: i32): usize {
  const c = <usize>cols;
  if (fmt == FMT_F32) return c << 2;
  if (fmt == FMT_F16) return c << 1;
  if (fmt == FMT_Q8) return c + (c >> 3);
  return (c >> 1) + (c >> 3);
}

/** Bytes of one Q8/Q4 quad-block (4 rows x 32 columns with their scales). */
// @ts-ignore: decorator
@inline export function quadBlockBytes(fmt: i32): usize {
  return fmt == FMT_Q8 ? 144 : 80;
}

/** Address of the quad-block holding row r's block b (Q8/Q4). */
// @ts-ignore: decorator
@inline export function quadBlock(fmt: i32, w: usize, cols: i32, r: i32, b: i32): usize {
  const qb = quadBlockBytes(fmt);
  return w + <usize>(r >> 2) * (<usize>(cols >> 5) * qb) + <usize>b * qb;
}

/** Scale of row r's block b (Q8/Q4). */
export function blockScale(fmt: i32, w: usize, cols: i32, r: i32, b: i32): f32 {
  return load<f32>(quadBlock(fmt, w, cols, r, b) + (<usize>(r & 3) << 2));
}

/** Flips the stored even-column Q8 bytes (q + 128) back to int8, four bytes at a time. */
export const EVEN_BIAS: i32 = 0x00800080;

/**
 * Row r of a Q8/Q4 matrix as cols i16 values (in column order) into `out`,
 * 16-byte aligned; cols a multiple of 32.
 */
export function unpackRowI16(fmt: i32, w: usize, cols: i32, r: i32, out: usize): void {
  const lane = <usize>(r & 3) << 2;
  const nb = cols >> 5;
  for (let b = 0; b < nb; b++) {
    const qb = quadBlock(fmt, w, cols, r, b) + 16 + lane;
    const o = out + (<usize>b << 6);
    if (fmt == FMT_Q8) {
      // pieces k = 0..7 of 4 weights each -> 32 i16
      for (let k = 0; k < 8; k += 2) {
        const v = v128.xor(v128.load32_lane(qb + (<usize>(k + 1) << 4), v128.load32_zero(qb + (<usize>k << 4)), 1), i32x4.splat(EVEN_BIAS));
        v128.store(o + (<usize>k << 3), i16x8.extend_low_i8x16_s(v));
      }
    } else {
      for (let k = 0; k < 4; k++) {
        // 4 bytes: low nibbles are columns 8k..8k+3, high nibbles 8k+4..8k+7
        const v = i16x8.extend_low_i8x16_s(v128.load32_zero(qb + (<usize>k << 4)));
        const lo = i16x8.shr_s(i16x8.shl(v, 12), 12);
        const hi = i16x8.shr_s(i16x8.shl(v, 8), 12);
        v128.store64_lane(o + (<usize>k << 4), lo, 0);
        v128.store64_lane(o + (<usize>k << 4), hi, 0, 8);
      }
    }
  }
}
