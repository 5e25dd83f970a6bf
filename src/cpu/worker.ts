/**
 * One thread of the CPU engine's pool (worker_threads in Node, a module Web
 * Worker in browsers): instantiates the kernels on the shared memory, then
 * loops forever on the job lists of pool-protocol.ts until told to quit.
 */
import { instantiateKernels } from "./kernels.js";
import { GEN, GEN_SLEEPERS, QUIT, kernelTable, runTiles, waitChange } from "./pool-protocol.js";

export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  tid: number;
}

function serve(init: WorkerInit, ready: () => void): void {
  const kernels = kernelTable(instantiateKernels(init.module, init.memory));
  const ctl = new Int32Array(init.control);
  let seen = Atomics.load(ctl, GEN);
  ready();
  for (;;) {
    seen = waitChange(ctl, GEN, seen, GEN_SLEEPERS, true);
    if (Atomics.load(ctl, QUIT)) return;
    runTiles(kernels, ctl, seen, init.tid, true);
  }
}

const g = globalThis as { process?: { versions?: { node?: string } }; onmessage?: unknown; postMessage?: (m: unknown) => void };
if (g.process?.versions?.node) {
  const { parentPort, workerData } = await import("node:worker_threads");
  if (parentPort) serve(workerData as WorkerInit, () => parentPort.postMessage("ready"));
} else {
  g.onmessage = (e: { data: WorkerInit }) => serve(e.data, () => g.postMessage!("ready"));
}
