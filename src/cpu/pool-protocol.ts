import { PARALLEL_KERNELS, type Kernels } from "./kernels.js";

/**
 * The job slot shared by the pool's threads: an Int32Array over its own
 * SharedArrayBuffer. The main thread writes a job (GEN + 1), publishes it in
 * GEN and joins in. A job is a list of NTILES tiles: NBIG of TILE rows,
 * then the rest of SMALL rows (the job's last rows in smaller pieces, so
 * that the threads finish close together); any thread
 * takes the next tile by a compare-and-swap on CLAIM, which holds the job's
 * generation with the next tile's index, and counts it in FINISHED when
 * done. The main thread returns once FINISHED reaches NTILES: it never waits
 * for a worker that had not started (one the OS has not scheduled yet does
 * the whole job's tiles' worth of nothing: its claims see a spent or newer
 * generation and fail), only for tiles in progress. On two cores shared
 * with other processes, waiting for every worker to check in made each of a
 * token's ~170 jobs cost up to tens of microseconds.
 */
export const GEN = 0;
export const CLAIM = 1;
export const FINISHED = 2;
export const FN = 3;
export const ROWS = 4;
export const TILE = 5;
export const NTILES = 6;
export const NARGS = 7;
export const QUIT = 8;
export const NBIG = 9;
export const SMALL = 10;
export const ARGS = 11;
export const MAX_ARGS = 13;
export const CONTROL_INTS = ARGS + MAX_ARGS;

/** Bits of CLAIM for the tile index; the generation (mod 2^19) sits above them. */
const INDEX_BITS = 12;
export const MAX_TILES = 1 << INDEX_BITS;
const GEN_MASK = (1 << 19) - 1;

/** CLAIM's value when job `gen` is published: no tile taken yet. */
export function claimStart(gen: number): number {
  return (gen & GEN_MASK) << INDEX_BITS;
}

/**
 * Spins (tens of microseconds once the loop is optimised) before a thread
 * sleeps in Atomics.wait: enough to bridge every gap between the jobs of
 * one token, short enough not to hold a core long after the last. The
 * longest gaps are the main thread's channel norm and quantizeInput before
 * the l1|l2 product (~5 us); with 2,000 spins the worker slept 3-13 times a
 * q8 decode step of metala-380m and paid a futex wake-up each time, with
 * 20,000 0-1.4 times, and the step's share of the probe's roofline rose by
 * 0.015-0.02 (two builds alternated in one process).
 */
export const SPINS = 20_000;

type AnyKernel = (...args: number[]) => void;

/** Runs tiles of job `gen` (if still open) on thread `tid`'s own instance of the kernels, until none is left. */
export function runTiles(kernels: Kernels, ctl: Int32Array, gen: number, tid: number): void {
  const mine = gen & GEN_MASK;
  for (;;) {
    const c = Atomics.load(ctl, CLAIM);
    if (c >>> INDEX_BITS !== mine) return;
    const i = c & (MAX_TILES - 1);
    if (i >= ctl[NTILES]) return;
    if (Atomics.compareExchange(ctl, CLAIM, c, c + 1) !== c) continue;
    // the claim succeeded, so job `gen` is still the one described in ctl
    const fn = (kernels as unknown as Record<string, AnyKernel>)[PARALLEL_KERNELS[ctl[FN]]];
    const big = ctl[NBIG];
    const r0 = i < big ? i * ctl[TILE] : big * ctl[TILE] + (i - big) * ctl[SMALL];
    runRows(fn, ctl, r0, Math.min(ctl[ROWS], r0 + (i < big ? ctl[TILE] : ctl[SMALL])), tid);
    if (Atomics.add(ctl, FINISHED, 1) + 1 === ctl[NTILES]) Atomics.notify(ctl, FINISHED);
  }
}

function runRows(fn: AnyKernel, ctl: Int32Array, r0: number, r1: number, tid: number): void {
  const a = ctl;
  switch (ctl[NARGS]) {
    case 3:
      return fn(a[ARGS], a[ARGS + 1], a[ARGS + 2], r0, r1, tid);
    case 4:
      return fn(a[ARGS], a[ARGS + 1], a[ARGS + 2], a[ARGS + 3], r0, r1, tid);
    case 5:
      return fn(a[ARGS], a[ARGS + 1], a[ARGS + 2], a[ARGS + 3], a[ARGS + 4], r0, r1, tid);
    case 6:
      return fn(a[ARGS], a[ARGS + 1], a[ARGS + 2], a[ARGS + 3], a[ARGS + 4], a[ARGS + 5], r0, r1, tid);
    case 7:
      return fn(a[ARGS], a[ARGS + 1], a[ARGS + 2], a[ARGS + 3], a[ARGS + 4], a[ARGS + 5], a[ARGS + 6], r0, r1, tid);
    case 8:
      return fn(a[ARGS], a[ARGS + 1], a[ARGS + 2], a[ARGS + 3], a[ARGS + 4], a[ARGS + 5], a[ARGS + 6], a[ARGS + 7], r0, r1, tid);
    case 9:
      return fn(a[ARGS], a[ARGS + 1], a[ARGS + 2], a[ARGS + 3], a[ARGS + 4], a[ARGS + 5], a[ARGS + 6], a[ARGS + 7], a[ARGS + 8], r0, r1, tid);
    case 11:
      return fn(a[ARGS], a[ARGS + 1], a[ARGS + 2], a[ARGS + 3], a[ARGS + 4], a[ARGS + 5], a[ARGS + 6], a[ARGS + 7], a[ARGS + 8], a[ARGS + 9], a[ARGS + 10], r0, r1, tid);
    case 13:
      return fn(a[ARGS], a[ARGS + 1], a[ARGS + 2], a[ARGS + 3], a[ARGS + 4], a[ARGS + 5], a[ARGS + 6], a[ARGS + 7], a[ARGS + 8], a[ARGS + 9], a[ARGS + 10], a[ARGS + 11], a[ARGS + 12], r0, r1, tid);
    default:
      throw new Error(`thread pool: no call form for ${ctl[NARGS]} arguments`);
  }
}
