/**
 * A prefill chunk's mat-mat products on the thread pool: the plain product
 * (assembly/matmat.ts matMat), and one level of Strassen's algorithm in
 * Winograd's form for the large float ones (7 products of half the tokens,
 * columns and rows instead of 8; the kernels' Strassen section has the
 * algebra).
 */
import type { Kernels } from "./kernels.js";
import type { ThreadPool } from "./pool.js";
import { PREPARED } from "./matmat-layout.js";
import type { Matrix } from "./weights.js";

/** Weight rows per tile of a mat-mat handed to whichever thread is free: 4 panels of 8 rows, a fraction of a millisecond each (a Strassen product's: STRASSEN_ROWS of each quarter). */
const MATMAT_TILE = 32;

/** Where a product's intermediate data goes (the forward's memory plan, src/cpu/forward.ts planActivations). */
export interface MatMatBuffers {
  tokens: number; // the tokens' tile layout (prepareTokenGroups), or a Strassen product's 7 token operands
  scratch: number; // per-thread panels
  strassen: number; // a Strassen product's per-thread temps (kernels' strassenTempsBytes)
}

/**
 * The least tokens, rows and columns of a float product that runs as a
 * Strassen product. Against the 1/8 of the multiply-adds saved stand the
 * token sums (~1/rows of the arithmetic), the output's sums (~1/cols) and,
 * with few rows, tiles of 32 rows of each half too few to share out evenly
 * (each the 7 products). Measured, each product against the plain one, two
 * threads, f32: rows 256 0.90-0.92 times as fast, 384 1.00, 512 1.03-1.04,
 * 1024-5632 1.01-1.13 (at 512 tokens); columns 256 1.06-1.18 (rows 768,
 * 1024, 2048); tokens 128 1.04-1.09, 64 1.03 ([3072, 1024]).
 */
export const STRASSEN_MIN = { tokens: 128, rows: 512, cols: 256 };

/** Whether Y = X m^T for T tokens runs as a Strassen product: float weights, STRASSEN_MIN, columns halving into multiples of 8 (F16's steps). */
export function strassenFits(m: Matrix, T: number): boolean {
  return (m.dtype === "f32" || m.dtype === "f16") && T >= STRASSEN_MIN.tokens && m.rows >= STRASSEN_MIN.rows && m.cols >= STRASSEN_MIN.cols && m.cols % 16 === 0;
}

/** Y (+)= X m^T for T tokens, Y rows ldy floats apart: as a Strassen product where strassenFits, else the plain one. */
export function queueProduct(pool: ThreadPool, k: Kernels, m: Matrix, X: number, Y: number, ldy: number, T: number, accumulate: boolean, b: MatMatBuffers): void {
  if (strassenFits(m, T)) queueStrassen(pool, m, X, Y, ldy, T, accumulate, b);
  else queueMatMat(pool, k, m, X, Y, ldy, T, accumulate, b);
}

/** The plain product. */
function queueMatMat(pool: ThreadPool, k: Kernels, m: Matrix, X: number, Y: number, ldy: number, T: number, accumulate: boolean, b: MatMatBuffers): void {
  const fmt = k.matMatFormat(m.fmt);
  // the tokens' tile layout, split by groups of 4 tokens: 2-3% of a quantized prefill on one thread while the others wait
  pool.queue("prepareTokenGroups", T, 4, [fmt, X, m.cols, T, b.tokens], 0, null);
  pool.queue("matMat", m.rows, 8, [fmt | PREPARED, m.ptr, b.tokens, Y, m.cols, ldy, T, accumulate ? 1 : 0, b.scratch], MATMAT_TILE, null);
}

/**
 * Y (+)= X m^T as a Strassen product (strassenFits; T <= the tokens the
 * buffers were planned for): the 7 token operands, then all 7 products and
 * their combination into Y, split by the products' weight rows as the
 * plain product is (kernels' matMatStrassen).
 */
export function queueStrassen(pool: ThreadPool, m: Matrix, X: number, Y: number, ldy: number, T: number, accumulate: boolean, b: MatMatBuffers): void {
  pool.queue("prepareStrassenTokens", (T + 1) >> 1, 4, [X, m.cols, T, b.tokens, b.scratch], 0, null);
  pool.queue("matMatStrassen", (m.rows + 1) >> 1, 8, [m.fmt, m.ptr, m.rows, m.cols, b.tokens, Y, ldy, T, accumulate ? 1 : 0, b.strassen, b.scratch], MATMAT_TILE, null);
}
