// Shared by the gpu-*.test.mjs files: a WebGPU device, or a printed reason to skip.
import { existsSync } from "node:fs";

// Tests run on SwiftShader where it is installed (Debian chromium-common):
// exact, deterministic, and present in CI without a GPU.
const SWIFTSHADER = "/usr/lib/chromium/vk_swiftshader_icd.json";
if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER)) process.env.VK_ICD_FILENAMES = SWIFTSHADER;

let ctxPromise;
/** The GpuContext, or null (with the reason printed once) when this machine has no WebGPU adapter. */
export async function gpuOrSkip() {
  ctxPromise ??= (async () => {
    const { openDevice } = await import("../dist/gpu/device.js");
    try {
      return await openDevice();
    } catch (e) {
      if (e?.kind === "device") {
        console.log(`SKIP gpu tests: ${e.message}`);
        return null;
      }
      throw e;
    }
  })();
  return ctxPromise;
}

/** Seeded uniform random numbers in [-scale, scale). */
export function randomArray(n, seed, scale = 1) {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    out[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/** max |a-b| / max |b|, the relative measure of metala-model.md §6. */
export function relError(a, b) {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return den === 0 ? num : num / den;
}
