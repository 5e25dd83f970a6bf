import { MetalaError } from "../errors.js";
import { PARALLEL_KERNELS, type Kernels, type ParallelKernel } from "./kernels.js";
import { ALIGN, ARGS, CONTROL_INTS, DONE, FN, GEN, MAX_ARGS, NARGS, NTHREADS, QUIT, ROWS, SPINS, runShare } from "./pool-protocol.js";

interface PoolWorker {
  terminate(): unknown;
}

/**
 * A persistent pool of threads over one shared memory. `run` splits a
 * kernel's rows between the calling thread (tid 0) and the workers, and
 * returns when all are done. Workers spin briefly between jobs before
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
    this.ctl[NTHREADS] = threads;
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

  /** Runs `kernel(...args, r0, r1, tid)` over `rows` rows in shares that are multiples of `align`. */
  run(kernel: ParallelKernel, rows: number, align: number, args: number[]): void {
    const ctl = this.ctl;
    if (args.length > MAX_ARGS) throw new Error(`thread pool: too many arguments for ${kernel}`);
    ctl[FN] = PARALLEL_KERNELS.indexOf(kernel);
    ctl[ROWS] = rows;
    ctl[ALIGN] = align;
    ctl[NARGS] = args.length;
    for (let i = 0; i < args.length; i++) ctl[ARGS + i] = args[i];
    const others = this.workers.length;
    if (others > 0) {
      Atomics.store(ctl, DONE, 0);
      Atomics.add(ctl, GEN, 1);
      Atomics.notify(ctl, GEN);
    }
    runShare(this.kernels, ctl, 0);
    if (others === 0) return;
    // spin first (the workers are usually a few microseconds behind); sleep when
    // they are not, e.g. when other processes hold the cores
    let spins = 0;
    for (let done = Atomics.load(ctl, DONE); done < others; done = Atomics.load(ctl, DONE))
      if (++spins > SPINS && this.canWait) {
        Atomics.wait(ctl, DONE, done, 1);
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
