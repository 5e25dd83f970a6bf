import { PARALLEL_KERNELS, type Kernels } from "./kernels.js";

/**
 * The job slot shared by the pool's threads: an Int32Array over its own
 * SharedArrayBuffer. The main thread writes a job, bumps GEN and joins in;
 * each worker, on seeing GEN change, runs its rows and increments DONE.
 */
export const GEN = 0;
export const DONE = 1;
export const FN = 2;
export const ROWS = 3;
export const ALIGN = 4;
export const NARGS = 5;
export const QUIT = 6;
export const NTHREADS = 7;
export const ARGS = 8;
export const MAX_ARGS = 12;
export const CONTROL_INTS = ARGS + MAX_ARGS;

/** Spins (a few to tens of microseconds) before a thread sleeps in Atomics.wait: enough to bridge the gaps between the products of one token, short enough not to steal a busy core from the thread doing the work. */
export const SPINS = 2_000;

/** Rows [r0, r1) of thread `tid`: equal shares, each a multiple of `align`. */
export function rowRange(rows: number, align: number, threads: number, tid: number): [number, number] {
  const share = Math.ceil(rows / threads / align) * align;
  const r0 = Math.min(rows, tid * share);
  return [r0, Math.min(rows, r0 + share)];
}

type AnyKernel = (...args: number[]) => void;

/** Runs the job in `ctl` for thread `tid` on its own instance's kernels. */
export function runShare(kernels: Kernels, ctl: Int32Array, tid: number): void {
  const fn = (kernels as unknown as Record<string, AnyKernel>)[PARALLEL_KERNELS[ctl[FN]]];
  const [r0, r1] = rowRange(ctl[ROWS], ctl[ALIGN], ctl[NTHREADS], tid);
  if (r0 >= r1) return;
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
    case 9:
      return fn(a[ARGS], a[ARGS + 1], a[ARGS + 2], a[ARGS + 3], a[ARGS + 4], a[ARGS + 5], a[ARGS + 6], a[ARGS + 7], a[ARGS + 8], r0, r1, tid);
    case 11:
      return fn(a[ARGS], a[ARGS + 1], a[ARGS + 2], a[ARGS + 3], a[ARGS + 4], a[ARGS + 5], a[ARGS + 6], a[ARGS + 7], a[ARGS + 8], a[ARGS + 9], a[ARGS + 10], r0, r1, tid);
    default:
      throw new Error(`thread pool: no call form for ${ctl[NARGS]} arguments`);
  }
}
