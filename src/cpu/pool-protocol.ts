import type { Kernels } from "./kernels.js";
import { PARALLEL_KERNELS } from "./kernels.js";

/**
 * The job list shared by the pool's threads: an Int32Array over its own
 * SharedArrayBuffer. The main thread opens a list (GEN + 1, published in
 * GEN), appends jobs to it and closes it, then joins in until all is done;
 * the workers start on the first job as soon as it is appended, while the
 * main thread is still appending the rest (a decode step of metala-380m
 * is one list of 7 x 24 + 2 jobs, ~1,700 tiles at f32, 340 at q8). A job is NTILES tiles: NBIG of TILE rows, then the rest of
 * SMALL rows (the job's last rows in smaller pieces, so that the threads
 * finish close together). The tiles of all the list's jobs are numbered in
 * one sequence: any thread takes the next one by a compare-and-swap on
 * CLAIM, which holds the list's generation with the next tile's index, runs
 * it once every tile before its job's first is done (FINISHED, the count of
 * tiles done, reaching that index: jobs depend on the ones before them),
 * and counts it in FINISHED. A thread that runs out of a job's tiles thus
 * waits for the job's last tiles with the next job's first tile in hand:
 * one counter's latency between jobs, where a job per hand-off from the
 * main thread cost a round trip through it (an empty two-tile job: 0.9-1.1
 * us on two threads, 0.5-0.7 on one) and left the workers idle while it
 * ran the step's JavaScript between jobs. The main thread returns once
 * FINISHED reaches the list's tile count: it never waits for a worker that
 * had not started (its claims see a spent or newer generation and fail),
 * only for tiles in progress.
 */
export const GEN = 0;
export const CLAIM = 1;
export const FINISHED = 2;
/** Tiles appended so far, with CLOSED set once the list is complete: a thread that has claimed them all waits on this word. */
export const APPENDED = 3;
export const QUIT = 4;
/** Threads (about to be) asleep on GEN, FINISHED, APPENDED: only then does a change need a notify (see wake). */
export const GEN_SLEEPERS = 5;
export const FINISHED_SLEEPERS = 6;
export const APPENDED_SLEEPERS = 7;
export const CLOSED = 1 << 30;

// a job: its kernel's index in PARALLEL_KERNELS, rows, the split, its first tile's index in the list, its arguments
export const FN = 0;
export const ROWS = 1;
export const TILE = 2;
export const NBIG = 3;
export const SMALL = 4;
export const NTILES = 5;
export const FIRST = 6;
export const NARGS = 7;
/** Where the job's row 0 lies and the bytes per row (0: nothing to warm): what a thread waiting to run one of its tiles loads into its cache meanwhile (see runTiles). */
export const WARM_AT = 8;
export const WARM_ROW_BYTES = 9;
export const ARGS = 10;
export const MAX_ARGS = 13;
export const JOB_INTS = ARGS + MAX_ARGS;
export const JOBS = 8;
/** Jobs per list: a decode step of metala-1b is 7 x 32 + 2. A longer list is run in parts. */
export const MAX_JOBS = 320;
export const CONTROL_INTS = JOBS + MAX_JOBS * JOB_INTS;

/** Bits of CLAIM for the tile index; the generation (mod 2^18) sits above them. */
const INDEX_BITS = 13;
export const MAX_TILES = 1 << INDEX_BITS;
const GEN_MASK = (1 << 18) - 1;

/** CLAIM's value when list `gen` is opened: no tile taken yet. */
export function claimStart(gen: number): number {
  return (gen & GEN_MASK) << INDEX_BITS;
}

/**
 * Spins (tens of microseconds once the loop is optimised) before a thread
 * sleeps in Atomics.wait: enough to bridge every gap between the lists of
 * one token, short enough not to hold a core long after the last. With
 * 2,000 spins the worker slept 3-13 times a q8 decode step of metala-380m
 * (a job per list then) and paid a futex wake-up each time, with 20,000
 * 0-1.4 times, and the step's share of the probe's roofline rose by
 * 0.015-0.02 (two builds alternated in one process).
 */
export const SPINS = 20_000;

type AnyKernel = (...args: number[]) => void;

/** A thread's kernels: the parallel ones in PARALLEL_KERNELS order, looked up once, not by name on every tile; touchLines. */
export interface ThreadKernels {
  fns: AnyKernel[];
  touch: (at: number, bytes: number) => number;
}

export function kernelTable(kernels: Kernels): ThreadKernels {
  return { fns: PARALLEL_KERNELS.map((name) => (kernels as unknown as Record<string, AnyKernel>)[name]), touch: kernels.touchLines };
}

/** Bytes of a tile a waiting thread loads ahead at most: a fraction of a core's L2, so that the first lines are still there when the tile runs. */
const WARM_LIMIT = 256 * 1024;
/** Bytes loaded between two looks at FINISHED. */
const WARM_STEP = 2048;

/**
 * Wakes whoever sleeps on ctl[at] if ctl[sleepers] says someone may: the
 * change before this and a sleeper's increment of ctl[sleepers] before its
 * Atomics.wait are both sequentially consistent, so either this load sees
 * the sleeper or its wait sees the changed value and does not sleep. Saves
 * a notify (a lock in the engine) on each of a token's ~2,000 tiles.
 */
export function wake(ctl: Int32Array, at: number, sleepers: number): void {
  if (Atomics.load(ctl, sleepers) > 0) Atomics.notify(ctl, at);
}

/** Atomics.wait on ctl[at] while it holds `value`, announced in ctl[sleepers] (see wake). */
export function sleep(ctl: Int32Array, at: number, value: number, sleepers: number, timeoutMs?: number): void {
  Atomics.add(ctl, sleepers, 1);
  Atomics.wait(ctl, at, value, timeoutMs);
  Atomics.sub(ctl, sleepers, 1);
}

/**
 * Waits until ctl[at] (which only grows while a list runs) leaves `value`:
 * spins, then sleeps if this thread may (not a browser's main thread),
 * for at most `timeoutMs` at a time.
 */
export function waitChange(ctl: Int32Array, at: number, value: number, sleepers: number, canWait: boolean, timeoutMs?: number): number {
  let spins = 0;
  for (let v = Atomics.load(ctl, at); ; v = Atomics.load(ctl, at)) {
    if (v !== value) return v;
    if (++spins > SPINS && canWait) {
      sleep(ctl, at, value, sleepers, timeoutMs);
      spins = 0;
    }
  }
}

/**
 * Runs tiles of list `gen` (while still open) on thread `tid`'s own
 * instance of the kernels (kernelTable) until the list is closed and none
 * is left to claim.
 */
export function runTiles(kernels: ThreadKernels, ctl: Int32Array, gen: number, tid: number, canWait: boolean): void {
  const mine = gen & GEN_MASK;
  let job = JOBS; // the job of the last tile claimed: tiles are claimed in order
  for (;;) {
    const c = Atomics.load(ctl, CLAIM);
    if (c >>> INDEX_BITS !== mine) return;
    const i = c & (MAX_TILES - 1);
    const appended = Atomics.load(ctl, APPENDED);
    if (i >= (appended & ~CLOSED)) {
      if (appended & CLOSED) return;
      waitChange(ctl, APPENDED, appended, APPENDED_SLEEPERS, canWait, 1);
      continue;
    }
    if (Atomics.compareExchange(ctl, CLAIM, c, c + 1) !== c) continue;
    // the claim succeeded, so list `gen` is still the one in ctl, up to tile i at least
    while (i >= ctl[job + FIRST] + ctl[job + NTILES]) job += JOB_INTS;
    const first = ctl[job + FIRST];
    const k = i - first;
    const big = ctl[job + NBIG];
    const r0 = k < big ? k * ctl[job + TILE] : big * ctl[job + TILE] + (k - big) * ctl[job + SMALL];
    const r1 = Math.min(ctl[job + ROWS], r0 + (k < big ? ctl[job + TILE] : ctl[job + SMALL]));
    let done = Atomics.load(ctl, FINISHED);
    if (done < first && ctl[job + WARM_ROW_BYTES] > 0) {
      // the jobs before are finishing on other threads: load this tile's first bytes (weights, state) meanwhile, which
      // its run then finds in cache, instead of idling while one thread alone streams its last tile
      const rb = ctl[job + WARM_ROW_BYTES];
      let at = ctl[job + WARM_AT] + r0 * rb;
      const end = at + Math.min((r1 - r0) * rb, WARM_LIMIT);
      for (; done < first && at < end; at += WARM_STEP, done = Atomics.load(ctl, FINISHED)) kernels.touch(at, Math.min(WARM_STEP, end - at));
    }
    while (done < first) done = waitChange(ctl, FINISHED, done, FINISHED_SLEEPERS, canWait, 1);
    runRows(kernels.fns[ctl[job + FN]], ctl, job, r0, r1, tid);
    Atomics.add(ctl, FINISHED, 1);
    wake(ctl, FINISHED, FINISHED_SLEEPERS);
  }
}

/** fn(...the arguments of the job at ctl offset `job`, r0, r1, tid). */
function runRows(fn: AnyKernel, a: Int32Array, job: number, r0: number, r1: number, tid: number): void {
  const A = job + ARGS;
  switch (a[job + NARGS]) {
    case 3:
      return fn(a[A], a[A + 1], a[A + 2], r0, r1, tid);
    case 4:
      return fn(a[A], a[A + 1], a[A + 2], a[A + 3], r0, r1, tid);
    case 5:
      return fn(a[A], a[A + 1], a[A + 2], a[A + 3], a[A + 4], r0, r1, tid);
    case 6:
      return fn(a[A], a[A + 1], a[A + 2], a[A + 3], a[A + 4], a[A + 5], r0, r1, tid);
    case 7:
      return fn(a[A], a[A + 1], a[A + 2], a[A + 3], a[A + 4], a[A + 5], a[A + 6], r0, r1, tid);
    case 8:
      return fn(a[A], a[A + 1], a[A + 2], a[A + 3], a[A + 4], a[A + 5], a[A + 6], a[A + 7], r0, r1, tid);
    case 9:
      return fn(a[A], a[A + 1], a[A + 2], a[A + 3], a[A + 4], a[A + 5], a[A + 6], a[A + 7], a[A + 8], r0, r1, tid);
    case 10:
      return fn(a[A], a[A + 1], a[A + 2], a[A + 3], a[A + 4], a[A + 5], a[A + 6], a[A + 7], a[A + 8], a[A + 9], r0, r1, tid);
    case 11:
      return fn(a[A], a[A + 1], a[A + 2], a[A + 3], a[A + 4], a[A + 5], a[A + 6], a[A + 7], a[A + 8], a[A + 9], a[A + 10], r0, r1, tid);
    case 12:
      return fn(a[A], a[A + 1], a[A + 2], a[A + 3], a[A + 4], a[A + 5], a[A + 6], a[A + 7], a[A + 8], a[A + 9], a[A + 10], a[A + 11], r0, r1, tid);
    case 13:
      return fn(a[A], a[A + 1], a[A + 2], a[A + 3], a[A + 4], a[A + 5], a[A + 6], a[A + 7], a[A + 8], a[A + 9], a[A + 10], a[A + 11], a[A + 12], r0, r1, tid);
    default:
      throw new Error(`thread pool: no call form for ${a[job + NARGS]} arguments`);
  }
}
