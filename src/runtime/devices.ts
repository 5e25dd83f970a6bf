import type { WebGpuInfo } from "../gpu/device.js";

/** What this process can run on, probed once. */
export interface DeviceProbe {
  cores: number;
  webgpu: WebGpuInfo;
  /** A software rasteriser (SwiftShader, llvmpipe, WARP): never chosen automatically. */
  webgpuIsSoftware: boolean;
  /** The CPU engine's own feature report (simd, relaxed SIMD, threads), or null when this build has no CPU engine. */
  wasm: Record<string, unknown> | null;
}

const SOFTWARE_NAMES = /swiftshader|llvmpipe|lavapipe|softpipe|software|basic render|warp/i;

/**
 * Whether an adapter is a CPU pretending to be a GPU: the adapter's own flag
 * when it sets it, else its names (Dawn reports SwiftShader as a regular
 * Vulkan device unless a fallback adapter was asked for).
 */
export function isSoftwareAdapter(info: WebGpuInfo): boolean {
  if (!info.available) return false;
  if (info.isFallbackAdapter) return true;
  return SOFTWARE_NAMES.test([info.vendor, info.architecture, info.device, info.description].join(" "));
}

async function coreCount(): Promise<number> {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  if (nav?.hardwareConcurrency) return nav.hardwareConcurrency;
  if (typeof process !== "undefined" && process.versions?.node) {
    const os = await import("node:os");
    return os.availableParallelism?.() ?? os.cpus().length;
  }
  return 1;
}

/** Imports an engine module a build (or a browser bundle) may lack; undefined when absent. */
export async function importEngineModule(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    return (await import(path)) as Record<string, unknown>;
  } catch (e) {
    const err = e as { code?: string; url?: string };
    if (err.code === "ERR_MODULE_NOT_FOUND" && (err.url === undefined || err.url === new URL(path, import.meta.url).href)) return undefined;
    throw e;
  }
}

let probe: Promise<DeviceProbe> | null = null;

/** The devices of this process (memoised: adapters do not come and go within a run). */
export function probeDevices(): Promise<DeviceProbe> {
  probe ??= (async () => {
    // In Node the adapter search runs in a child process (see gpu/probe-isolated.ts); browsers have no such noise.
    const isNode = typeof process !== "undefined" && !!process.versions?.node;
    const gpuMod = await importEngineModule(isNode ? "../gpu/probe-isolated.js" : "../gpu/device.js");
    const webgpuInfo = (isNode ? gpuMod?.webgpuInfoIsolated : gpuMod?.webgpuInfo) as (() => Promise<WebGpuInfo>) | undefined;
    const webgpu: WebGpuInfo = webgpuInfo ? await webgpuInfo() : { available: false, reason: "this build has no WebGPU engine" };
    const cpuMod = await importEngineModule("../cpu/engine.js");
    const wasmFeatures = cpuMod?.wasmFeatures as (() => Record<string, unknown> | Promise<Record<string, unknown>>) | undefined;
    return {
      cores: await coreCount(),
      webgpu,
      webgpuIsSoftware: isSoftwareAdapter(webgpu),
      wasm: wasmFeatures ? await wasmFeatures() : null,
    };
  })();
  return probe;
}
