import { MetalaError } from "../errors.js";
import { PARALLEL_KERNELS, type Kernels, type ParallelKernel } from "./kernels.js";
import { APPENDED, APPENDED_SLEEPERS, ARGS, CLAIM, CLOSED, CONTROL_INTS, FINISHED, FINISHED_SLEEPERS, FIRST, FN, GEN, GEN_SLEEPERS, JOB_INTS, JOBS, MAX_ARGS, MAX_JOBS, MAX_TILES, NARGS, NBIG, NTILES, QUIT, ROWS, SMALL, TILE, WARM_AT, WARM_ROW_BYTES, claimStart, kernelTable, type ThreadKernels, runTiles, waitChange, wake } from "./pool-protocol.js";

/** Kernel name -> its index in PARALLEL_KERNELS, the number a job carries. */
const KERNEL_INDEX = new Map<string, number>(PARALLEL_KERNELS.map((name, i) => [name, i]));

interface PoolWorker {
  terminate(): unknown;
}

/**
 * A persistent pool of threads over one shared memory. `queue` appends a
 * job, a kernel's rows split between the calling thread (tid 0) and the
 * workers, to a list the workers start on at once (protocol in
 * pool-protocol.ts); `flush` joins in and returns when all are done; `run`
 * is both. Workers spin briefly between lists before sleeping, so the many
 * small products of one token cost a counter's latency between jobs rather
 * than a thread wake-up.
 */
export class ThreadPool {
  private readonly ctl: Int32Array;
  private readonly own: ThreadKernels;
  /** The job list being appended to (see queue): its generation, jobs and tiles so far. */
  private open = false;
  private gen = 0;
  private jobs = 0;
  private tiles = 0;
  /** Atomics.wait is allowed here (Node's main thread, workers), not on a browser's main thread, nor on a pool of one thread (not shared). */
  private readonly canWait: boolean;
  private constructor(
    kernels: Kernels,
    readonly threads: number,
    control: SharedArrayBuffer | ArrayBuffer,
    private readonly workers: PoolWorker[],
  ) {
    this.ctl = new Int32Array(control);
    this.own = kernelTable(kernels);
    this.canWait = workers.length > 0 && (!!(globalThis as { process?: unknown }).process || typeof (globalThis as { document?: unknown }).document === "undefined");
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

  /** Runs one job (see queue) and returns when it is done, with every job queued before it. */
  run(kernel: ParallelKernel, rows: number, align: number, args: number[], tile = 0): void {
    this.queue(kernel, rows, align, args, tile, null);
    this.flush();
  }

  /**
   * Appends `kernel(...args, r0, r1, tid)` over `rows` rows to the open job
   * list (opening one if none is), to run after the jobs before it; the
   * workers start on it at once, the calling thread at flush, and its
   * results are there after flush. By default in one share per thread
   * (multiples of `align`), with `tile` > 0 (a multiple of `align`) in
   * tiles of `tile` rows, the last threads' worth of them cut in quarters
   * (multiples of `align`): a thread that draws the last whole tile while
   * the others have none left keeps them waiting up to a tile's time (a q8
   * mat-vec tile of metala-380m streams 150-450 KB, 15-40 us). Either way
   * any thread may run any share, several per thread, whichever is free
   * first. `warm`: where the rows' data starts and its bytes per row, for
   * a thread that has a tile of the job in hand while the jobs before it
   * finish to load the tile's first bytes meanwhile (protocol's runTiles).
   */
  queue(kernel: ParallelKernel, rows: number, align: number, args: number[], tile: number, warm: { at: number; rowBytes: number } | null): void {
    const ctl = this.ctl;
    if (args.length > MAX_ARGS) throw new Error(`thread pool: too many arguments for ${kernel}`);
    const size = tile > 0 ? tile : Math.max(align, Math.ceil(rows / this.threads / align) * align);
    const big = tile > 0 && this.threads > 1 ? Math.max(0, Math.ceil(rows / size) - this.threads) : Math.ceil(rows / size);
    const small = Math.max(align, Math.ceil(size / 4 / align) * align);
    const tiles = big + Math.ceil(Math.max(0, rows - big * size) / small);
    if (tiles > MAX_TILES) throw new Error(`thread pool: ${tiles} tiles of ${kernel} (at most ${MAX_TILES})`);
    if (tiles === 0) return;
    if (this.open && (this.jobs === MAX_JOBS || this.tiles + tiles > MAX_TILES)) this.flush();
    if (!this.open) this.openList();
    const at = JOBS + this.jobs * JOB_INTS;
    ctl[at + FN] = KERNEL_INDEX.get(kernel)!;
    ctl[at + ROWS] = rows;
    ctl[at + TILE] = size;
    ctl[at + NBIG] = big;
    ctl[at + SMALL] = small;
    ctl[at + NTILES] = tiles;
    ctl[at + FIRST] = this.tiles;
    ctl[at + NARGS] = args.length;
    ctl[at + WARM_AT] = warm ? warm.at : 0;
    ctl[at + WARM_ROW_BYTES] = warm ? warm.rowBytes : 0;
    for (let i = 0; i < args.length; i++) ctl[at + ARGS + i] = args[i];
    this.jobs++;
    this.tiles += tiles;
    Atomics.store(ctl, APPENDED, this.tiles);
    wake(ctl, APPENDED, APPENDED_SLEEPERS);
  }

  /** Runs the open job list to its end (the calling thread joins in); returns when every job queued is done. */
  flush(): void {
    if (!this.open) return;
    const ctl = this.ctl;
    Atomics.store(ctl, APPENDED, this.tiles | CLOSED);
    wake(ctl, APPENDED, APPENDED_SLEEPERS);
    // closed even if a kernel traps (a bug), so that the error reaches the caller instead of the next flush waiting for that tile forever
    this.open = false;
    runTiles(this.own, ctl, this.gen, 0, this.canWait);
    // the last tiles in progress on other threads: spin (they are usually a few microseconds from done), sleep when they are not, e.g. when other processes hold the cores
    for (let done = Atomics.load(ctl, FINISHED); done < this.tiles; ) done = waitChange(ctl, FINISHED, done, FINISHED_SLEEPERS, this.canWait, 1);
  }

  private openList(): void {
    const ctl = this.ctl;
    const gen = ctl[GEN] + 1;
    // no claim of an earlier list may succeed while the list is rewritten
    Atomics.store(ctl, CLAIM, -1);
    Atomics.store(ctl, FINISHED, 0);
    Atomics.store(ctl, APPENDED, 0);
    Atomics.store(ctl, CLAIM, claimStart(gen));
    Atomics.store(ctl, GEN, gen);
    wake(ctl, GEN, GEN_SLEEPERS);
    this.open = true;
    this.gen = gen;
    this.jobs = 0;
    this.tiles = 0;
  }

  dispose(): void {
    this.open = false;
    if (this.workers.length === 0) return;
    Atomics.store(this.ctl, QUIT, 1);
    Atomics.add(this.ctl, GEN, 1);
    Atomics.notify(this.ctl, GEN);
    for (const w of this.workers) w.terminate();
    this.workers.length = 0;
  }
}
