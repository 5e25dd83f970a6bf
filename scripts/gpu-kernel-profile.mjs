#!/usr/bin/env node
// GPU time of every kernel of one forward pass (webgpu engine), summed by
// kernel and grid: each dispatch recorded in its own compute pass between
// two timestamps (the device needs timestamp-query; Dawn's quantization of
// timestamps is turned off). A pass of its own adds a fixed cost to every
// kernel (~10 us on an H200), so read differences between kernels and
// lengths, not absolute sums. Needs a build (npm run build).
//
//   node scripts/gpu-kernel-profile.mjs [--model DIR | --preset metala-380m] [--lengths 512,2048]
import { parseArgs } from "node:util";
import { create, globals } from "webgpu";

const { values: f } = parseArgs({
  options: {
    model: { type: "string" },
    preset: { type: "string", default: "metala-380m" },
    lengths: { type: "string" },
  },
});
const { tokenCountsFlag } = await import("../dist/cli/args.js");
let lengths;
try {
  lengths = tokenCountsFlag(f.lengths, "lengths", "512,2048");
} catch (e) {
  console.error(e.message);
  process.exit(2);
}

// device.ts takes navigator.gpu where there is one: this one without timestamp quantization
Object.assign(globalThis, globals);
globalThis.navigator = { gpu: create(["disable-dawn-features=timestamp_quantization"]) };
const { openDevice } = await import("../dist/gpu/device.js");
const { createWebGpuEngine } = await import("../dist/gpu/engine.js");
const { openCheckpoint } = await import("../dist/model/checkpoint.js");
const { presetSource } = await import("../dist/model/preset.js");

const ctx = await openDevice();
if (!ctx.hasTimestamps) {
  console.error("this GPU has no timestamp-query feature");
  process.exit(1);
}
const { device } = ctx;
const source = f.model ? await openCheckpoint(f.model) : presetSource(f.preset);
const engine = await createWebGpuEngine(source, { context: ctx });
const forward = await engine.forward();

/** The dispatches a forward pass of T tokens records, with what each binds. */
function record(T) {
  const calls = [];
  let cur;
  const recorder = {
    setPipeline: (p) => (cur = { p, groups: [] }),
    setBindGroup: (i, g) => (cur.groups[i] = g),
    dispatchWorkgroups: (x, y = 1, z = 1) => calls.push({ ...cur, groups: [...cur.groups], grid: [x, y, z] }),
  };
  forward.encode(recorder, T, 1);
  return calls;
}

for (const T of lengths) {
  if (T > forward.maxTokens) {
    console.error(`--lengths: ${T} is over the engine's chunk of ${forward.maxTokens} tokens`);
    process.exit(2);
  }
  const u = forward.uniforms(T, 1);
  device.queue.writeBuffer(forward.buffers.dims, 0, u.dims);
  device.queue.writeBuffer(forward.buffers.headDims, 0, u.headDims);
  const calls = record(T);
  const n = calls.length;
  const querySet = device.createQuerySet({ type: "timestamp", count: 2 * n });
  const resolved = device.createBuffer({ size: 16 * n, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const readable = device.createBuffer({ size: 16 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  let ticks;
  // the first passes warm the GPU's clocks up; the last one counts
  for (let rep = 0; rep < 4; rep++) {
    const enc = device.createCommandEncoder();
    calls.forEach((c, i) => {
      const pass = enc.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
      pass.setPipeline(c.p);
      c.groups.forEach((g, j) => g && pass.setBindGroup(j, g));
      pass.dispatchWorkgroups(...c.grid);
      pass.end();
    });
    enc.resolveQuerySet(querySet, 0, 2 * n, resolved, 0);
    enc.copyBufferToBuffer(resolved, 0, readable, 0, 16 * n);
    device.queue.submit([enc.finish()]);
    await readable.mapAsync(GPUMapMode.READ);
    ticks = new BigUint64Array(readable.getMappedRange().slice(0));
    readable.unmap();
  }
  const byKernel = new Map();
  let total = 0;
  calls.forEach((c, i) => {
    const us = Number(ticks[2 * i + 1] - ticks[2 * i]) / 1e3;
    const key = `${c.p.label} [${c.grid.join(",")}]`;
    const k = byKernel.get(key) ?? { count: 0, us: 0 };
    k.count++;
    k.us += us;
    byKernel.set(key, k);
    total += us;
  });
  console.log(`T=${T}: ${n} dispatches, ${(total / 1e3).toFixed(2)} ms of kernels (each in its own pass)`);
  for (const [key, k] of [...byKernel].sort((a, b) => b[1].us - a[1].us))
    console.log(`  ${key.padEnd(44)} x${String(k.count).padStart(3)}  ${k.us.toFixed(0).padStart(6)} us  (${(k.us / k.count).toFixed(1)} each)`);
  querySet.destroy();
  resolved.destroy();
  readable.destroy();
}
await engine.dispose();
process.exit(0);
