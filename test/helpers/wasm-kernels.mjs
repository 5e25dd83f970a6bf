// The kernels of this host's best wasm build on a memory of their own, with
// a bump allocator the kernel tests reset before each test: what the
// cpu-*.test.mjs files that call kernels directly share.
import { test } from "uvu";
import { wasmFeatures } from "../../dist/cpu/features.js";
import { compileKernels, instantiateKernels } from "../../dist/cpu/kernels.js";

/** `pages` of 64 KiB; allocations start at 64 KiB (below: nothing, so that a 0 pointer stays invalid). */
export async function kernelHarness(pages) {
  const features = await wasmFeatures();
  const { module, build } = await compileKernels(features, features.threads);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: features.threads });
  const k = instantiateKernels(module, memory);
  const buf = memory.buffer;
  let top = 65536;
  const alloc = (bytes) => {
    const p = top;
    top += Math.ceil(bytes / 64) * 64;
    return p;
  };
  test.before.each(() => {
    top = 65536;
  });
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
