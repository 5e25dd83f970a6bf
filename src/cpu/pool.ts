import { MetalaError } from "../errors.js";
import { PARALLEL_KERNELS, type Kernels, type ParallelKernel } from "./kernels.js";
import { ARGS, CLAIM, CONTROL_INTS, FINISHED, FN, GEN, MAX_ARGS, MAX_TILES, NARGS, NBIG, NTILES, QUIT, ROWS, SMALL, SPINS, TILE, claimStart, runTiles } from "./pool-protocol.js";

interface PoolWorker {
  terminate(): unknown;
}

/**
 * A persistent pool of threads over one shared memory. `run` splits a
 * kernel's rows between the calling thread (tid 0) and the workers
 * (protocol in pool-protocol.ts), and returns when all are done. Workers spin briefly between jobs before
 * sleeping, so the many small products of one token cost a few microseconds
 * of hand-off each rather than a thread wake-up.
 */
export class ThreadPool {
  private readonly ctl: Int32Array;
  /** Atomics.wait is allowed here (Node's main thread, workers), not on a browser's main thread. */
  private readonly canWait = !!(globalThis as { process?: unknown }).process || typeof (globalThis as { document?: unknown }).document === "undefined";
  private constructor(
    private readonly kernels: Kernels,
    readonly threads: number,
    control: SharedArrayBuffer | ArrayBuffer,
    private readonly workers: PoolWorker[],
  ) {
    this.ctl = new Int32Array(control);
  }

  static async create(kernels: Kernels, module: WebAssembly.Module, memory: WebAssembly.Memory, threads: number): Promise<ThreadPool> {
    if (threads <= 1) return new ThreadPool(kernels, 1, new ArrayBuffer(CONTROL_INTS * 4), []);
    const control = new SharedArrayBuffer(CONTROL_INTS * 4);
    const workers: PoolWorker[] = [];
    const url = new URL("./worker.js", import.meta.url);
    const ready: Promise<void>[] = [];
    const g = globalThis as { process?: { versions?: { node?: string } } };
    try {
      if (g.process?.versions?.node) {
        const { Worker } = await import("node:worker_threads");
        for (let tid = 1; tid < threads; tid++) {
          const w = new Worker(url, { workerData: { module, memory, control, tid } });
          w.unref();
          workers.push(w);
          ready.push(new Promise((resolve, reject) => { w.once("message", () => resolve()); w.once("error", reject); }));
        }
      } else {
        for (let tid = 1; tid < threads; tid++) {
          const w = new Worker(url, { type: "module" });
          workers.push(w);
          ready.push(new Promise((resolve, reject) => { w.onmessage = () => resolve(); w.onerror = (e) => reject(new Error(e.message)); }));
          w.postMessage({ module, memory, control, tid });
        }
      }
      await Promise.all(ready);
    } catch (e) {
      for (const w of workers) w.terminate();
      throw new MetalaError("device", `cannot start the wasm engine's worker threads: ${(e as Error).message}`);
    }
    return new ThreadPool(kernels, threads, control, workers);
  }

  /**
   * Runs `kernel(...args, r0, r1, tid)` over `rows` rows: by default in one
   * share per thread (multiples of `align`), with `tile` > 0 (a multiple of
   * `align`) in tiles of `tile` rows, the last threads' worth of them cut in
   * quarters (multiples of `align`): a thread that draws the last whole tile
   * while the others have none left keeps them waiting up to a tile's time
   * (a q8 mat-vec tile of metala-380m streams 150-450 KB, 15-40 us). Either
   * way any thread may run any share, several per thread, whichever is free
   * first.
   */
  run(kernel: ParallelKernel, rows: number, align: number, args: number[], tile = 0): void {
    const ctl = this.ctl;
    if (args.length > MAX_ARGS) throw new Error(`thread pool: too many arguments for ${kernel}`);
    const size = tile > 0 ? tile : Math.max(align, Math.ceil(rows / this.threads / align) * align);
    const big = tile > 0 && this.threads > 1 ? Math.max(0, Math.ceil(rows / size) - this.threads) : Math.ceil(rows / size);
    const small = Math.max(align, Math.ceil(size / 4 / align) * align);
    const tiles = big + Math.ceil(Math.max(0, rows - big * size) / small);
    if (tiles > MAX_TILES) throw new Error(`thread pool: ${tiles} tiles of ${kernel} (at most ${MAX_TILES})`);
    if (tiles === 0) return;
    const gen = ctl[GEN] + 1;
    // no claim of an earlier job may succeed while the job is rewritten
    Atomics.store(ctl, CLAIM, -1);
    ctl[FN] = PARALLEL_KERNELS.indexOf(kernel);
    ctl[ROWS] = rows;
    ctl[TILE] = size;
    ctl[NBIG] = big;
    ctl[SMALL] = small;
    ctl[NTILES] = tiles;
    ctl[NARGS] = args.length;
    for (let i = 0; i < args.length; i++) ctl[ARGS + i] = args[i];
    Atomics.store(ctl, FINISHED, 0);
    Atomics.store(ctl, CLAIM, claimStart(gen));
    if (this.workers.length > 0) {
      Atomics.store(ctl, GEN, gen);
      Atomics.notify(ctl, GEN);
    } else ctl[GEN] = gen;
    runTiles(this.kernels, ctl, gen, 0);
    // spin first (the workers are usually a few microseconds behind); sleep when
    // they are not, e.g. when other processes hold the cores
    let spins = 0;
    for (let done = Atomics.load(ctl, FINISHED); done < tiles; done = Atomics.load(ctl, FINISHED))
      if (++spins > SPINS && this.canWait) {
        Atomics.wait(ctl, FINISHED, done, 1);
        spins = 0;
      }
  }

  dispose(): void {
    if (this.workers.length === 0) return;
    Atomics.store(this.ctl, QUIT, 1);
    Atomics.add(this.ctl, GEN, 1);
    Atomics.notify(this.ctl, GEN);
    for (const w of this.workers) w.terminate();
    this.workers.length = 0;
  }
}
