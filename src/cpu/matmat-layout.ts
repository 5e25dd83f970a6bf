/**
 * The mat-mat's (assembly/matmat.ts) format flags and buffer sizes, on the
 * host side: the memory plan sizes its buffers with these, and
 * test/cpu-kernels.test.mjs holds them equal to the kernels' own exports
 * (preparedBytes, matMatScratchBytes), so the two cannot drift apart.
 */
import { FMT } from "./kernels.js";

/** Added to a Q8/Q4 format: quantize the tokens to i16 and multiply on integers. */
export const INT_INPUT = 16;

/** Added to a format: matMat's x is already in prepareTokens' layout. */
export const PREPARED = 32;

/** Added to FMT.q4 in the relaxed build: i8 tokens on relaxed dot products (the kernels' matMatFormat picks the path). */
export const I8_INPUT = 64;

/** Every flag combination matMat may be called with, less PREPARED: the memory plan serves the largest. */
export const MATMAT_PATHS = [FMT.f32, FMT.f16, FMT.q8 | INT_INPUT, FMT.q4 | INT_INPUT, FMT.q4 | I8_INPUT];

/** Bytes of prepareTokens' output for T tokens of `cols`: groups of 4 tokens (the last padded), as i8 with a scale and a sum per 32 for I8_INPUT, i16 with a scale per 32 for INT_INPUT, else f32. */
export function preparedBytes(fmt: number, T: number, cols: number): number {
  const t = (T + 3) & ~3;
  if (fmt & I8_INPUT) return t * cols + t * (cols / 32) * 8;
  return fmt & INT_INPUT ? t * cols * 2 + t * (cols / 32) * 4 : t * cols * 4;
}

/** Panels of 8 rows the float path packs before running the tokens against them (assembly/matmat.ts PANELS). */
export const FLOAT_PANELS = 4;

/** matMat's scratch per thread: the tokens' layout unless PREPARED, a panel of 8 rows (on floats room for 6 blocks of FLOAT_PANELS panels of half the columns, matMatStrassen's), and the path's own room (unpacked rows and scales; on floats 8 rows of weights, dequantized or a lower quarter's padded with zeros, later an 8 x 6 tile's sums). */
export function matMatScratchBytes(fmt: number, T: number, cols: number): number {
  const own = fmt & PREPARED ? 0 : preparedBytes(fmt, T, cols);
  if (fmt & I8_INPUT) return own + cols * 8 + cols + cols * 2 + cols * 8;
  if (fmt & INT_INPUT) return own + cols * 16 + cols + cols * 16;
  return own + cols * 32 * FLOAT_PANELS * 3 + Math.max(192, cols * 32);
}

/** Bytes of prepareStrassenTokens' 7 operands for T tokens of `cols` (each half the tokens, rounded up, and half the columns). */
export function strassenTokensBytes(T: number, cols: number): number {
  return 7 * preparedBytes(FMT.f32, (T + 1) >> 1, cols / 2);
}

/** Weight rows matMatStrassen runs its 7 products for at a time (assembly/matmat.ts STRASSEN_ROWS): a block of panels. */
export const STRASSEN_ROWS = 8 * FLOAT_PANELS;

/** Bytes of one thread's Strassen temps for T tokens: the 7 products over STRASSEN_ROWS rows of half the tokens. */
export function strassenTempsBytes(T: number): number {
  return 7 * ((T + 1) >> 1) * STRASSEN_ROWS * 4;
}
