/**
 * Sizes of the storage layouts of assembly/formats.ts (the kernels write and
 * read them; assembly/quantize.ts converts f32 rows into them at load).
 */
import type { WeightDType } from "./kernels.js";

/** Bytes of one stored row of `cols` weights. */
export function rowBytes(dtype: WeightDType, cols: number): number {
  switch (dtype) {
    case "f32":
      return cols * 4;
    case "f16":
      return cols * 2;
    case "q8":
      return cols + cols / 8;
    case "q4":
      return cols / 2 + cols / 8;
  }
}

/** Bytes of a stored [rows, cols] matrix: q8/q4 rows go in quads, the last one padded to four rows. */
export function matrixBytes(dtype: WeightDType, rows: number, cols: number): number {
  const stored = dtype === "q8" || dtype === "q4" ? Math.ceil(rows / 4) * 4 : rows;
  return stored * rowBytes(dtype, cols);
}

/** Bytes of the quantized-input buffer for `cols` inputs (quantizeInput of assembly/matvec-quant.ts). */
export function inputBytes(cols: number): number {
  return cols * 2 + cols / 4;
}
