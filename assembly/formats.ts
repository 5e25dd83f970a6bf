// Storage formats of weight matrices in linear memory. Rows are independent
// and stored one after another, so matrices that share an input (q, k_gate,
// v, g; l1, l2) are concatenated by rows at load. src/cpu/quantize.ts writes
// these layouts; both sides must change together.
//
//   F32: cols f32 per row.
//   F16: cols f16 per row; inside each group of 8 the order is
//        w0 w4 w1 w5 w2 w6 w3 w7, so that one 128-bit load splits into
//        w0..3 and w4..7 with a mask and a shift (see decodeF16 in matvec.ts).
//   Q8:  per row cols int8 values, then cols/32 f32 scales (w = q * scale).
//   Q4:  per row cols/2 bytes, 16 per block of 32, then cols/32 f32 scales
//        (w = q * scale, q in [-8, 7] as 4-bit two's complement). Byte 2j of
//        a block holds q[j] (low nibble) and q[8+j]; byte 2j+1 holds q[16+j]
//        and q[24+j]: read as eight 16-bit lanes, lane j is q[j], q[8+j],
//        q[16+j], q[24+j] from the low bits up (see dotQ4Block in matvec.ts).
//
// Quantized products also quantize the input vector x per block of 32
// (quantizeInput): cols i16 values (scale = max|x| / 127), then the block
// scales.

export const FMT_F32: i32 = 0;
export const FMT_F16: i32 = 1;
export const FMT_Q8: i32 = 2;
export const FMT_Q4: i32 = 3;

/** Bytes of one stored row of `cols` weights. */
export function rowBytes(fmt: i32, cols: i32): usize {
  const c = <usize>cols;
  if (fmt == FMT_F32) return c << 2;
  if (fmt == FMT_F16) return c << 1;
  if (fmt == FMT_Q8) return c + (c >> 3);
  return (c >> 1) + (c >> 3);
}
