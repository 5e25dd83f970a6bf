// The kernels of this host's best wasm build on a memory of their own, with
// a bump allocator (kernelHarness: reset before each test; withKernelPool:
// one per pool, with its threads): what the cpu-*.test.mjs files that call
// kernels directly share.
import { test } from "uvu";
import { wasmFeatures } from "../../dist/cpu/features.js";
import { compileKernels, instantiateKernels } from "../../dist/cpu/kernels.js";
import { ThreadPool } from "../../dist/cpu/pool.js";

/** Allocations of 64-byte multiples from 64 KiB on (below: nothing, so that a 0 pointer stays invalid). */
function bumpAllocator() {
  let top = 65536;
  const alloc = (bytes) => {
    const p = top;
    top += Math.ceil(bytes / 64) * 64;
    return p;
  };
  return { alloc, reset: () => (top = 65536) };
}

let compiled;
/** Kernels on `pages` of 64 KiB (shared where the host has threads); the module compiled once per process. */
async function kernelsOn(pages) {
  const features = await wasmFeatures();
  compiled ??= compileKernels(features, features.threads);
  const { module, build } = await compiled;
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: features.threads });
  return { k: instantiateKernels(module, memory), module, build, memory };
}

/** `pages` of 64 KiB; allocations start at 64 KiB. */
export async function kernelHarness(pages) {
  const { k, build, module, memory } = await kernelsOn(pages);
  const buf = memory.buffer;
  const { alloc, reset } = bumpAllocator();
  test.before.each(reset);
  /** f32 copy of arr at a new place. */
  const put = (arr) => {
    const p = alloc(arr.length * 4);
    new Float32Array(buf, p, arr.length).set(arr);
    return p;
  };
  /** n f32 at p, as float64. */
  const get = (p, n) => Float64Array.from(new Float32Array(buf, p, n));
  return { k, build, module, buf, alloc, put, get };
}

/** fn({ k, pool, buf, alloc }) with a thread pool of `threads` over fresh kernels on `pages` of 64 KiB, disposed after. */
export async function withKernelPool(threads, pages, fn) {
  const { k, module, memory } = await kernelsOn(pages);
  const pool = await ThreadPool.create(k, module, memory, threads);
  try {
    await fn({ k, pool, buf: memory.buffer, alloc: bumpAllocator().alloc });
  } finally {
    pool.dispose();
  }
}
