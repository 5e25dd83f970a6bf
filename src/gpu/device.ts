import { MetalaError } from "../errors.js";

/**
 * Finding a WebGPU device: `navigator.gpu` in browsers and Electron renderers,
 * the optional `webgpu` package (Dawn) in Node. Every way of not having one
 * ends in a MetalaError of kind "device", never a crash.
 */

export interface WebGpuInfo {
  available: boolean;
  /** Why there is no adapter (package missing, no adapter), when unavailable. */
  reason?: string;
  source?: "navigator.gpu" | "webgpu package";
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  /** A software rasteriser such as SwiftShader: correct but slow. */
  isFallbackAdapter?: boolean;
  features?: string[];
  limits?: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupsPerDimension: number;
    maxStorageBuffersPerShaderStage: number;
  };
}

/** Features the engine uses where the adapter offers them. */
const WANTED_FEATURES = ["shader-f16", "subgroups", "timestamp-query"] as const;

let gpuPromise: Promise<{ gpu: GPU; source: WebGpuInfo["source"] }> | undefined;

async function findGpu(): Promise<{ gpu: GPU; source: WebGpuInfo["source"] }> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return { gpu: nav.gpu, source: "navigator.gpu" };
  const isNode = typeof process !== "undefined" && !!process.versions?.node;
  if (!isNode) throw new MetalaError("device", "WebGPU is not available: this browser has no navigator.gpu");
  let mod: { create: (o: string[]) => GPU; globals: object };
  try {
    // A variable specifier keeps bundlers for the browser from trying to resolve the Node-only package.
    const name = "webgpu";
    mod = (await import(name)) as typeof mod;
  } catch (e) {
    throw new MetalaError("device", `WebGPU is not available: the optional package "webgpu" could not be loaded (${(e as Error).message.split("\n")[0]})`);
  }
  // The Vulkan loader prints "error: XDG_RUNTIME_DIR is invalid or not set"
  // on a headless machine (a server, CI) while probing window-system
  // support a compute engine never uses: give it the temp folder instead.
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = (await import("node:os")).tmpdir();
  // Dawn's classes (GPUBufferUsage, ...) are what the WebGPU code refers to as globals.
  for (const [k, v] of Object.entries(mod.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  return { gpu: mod.create([]), source: "webgpu package" };
}

function gpuOnce() {
  gpuPromise ??= findGpu();
  return gpuPromise;
}

async function requestAdapter(): Promise<{ adapter: GPUAdapter; source: WebGpuInfo["source"] }> {
  const { gpu, source } = await gpuOnce();
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (e) {
    throw new MetalaError("device", `WebGPU adapter request failed: ${(e as Error).message}`);
  }
  if (!adapter) throw new MetalaError("device", "WebGPU is not available: no adapter (no GPU, or no Vulkan/Metal/D3D driver)");
  return { adapter, source };
}

function describe(adapter: GPUAdapter, source: WebGpuInfo["source"]): WebGpuInfo {
  const info = adapter.info;
  const l = adapter.limits;
  return {
    available: true,
    source,
    vendor: info?.vendor ?? "",
    architecture: info?.architecture ?? "",
    device: info?.device ?? "",
    description: info?.description ?? "",
    isFallbackAdapter: Boolean((info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    features: [...adapter.features].map(String).sort(),
    limits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    },
  };
}

/** The probe behind `metala info`: what WebGPU adapter this process would use, or why there is none. */
export async function webgpuInfo(): Promise<WebGpuInfo> {
  try {
    const { adapter, source } = await requestAdapter();
    return describe(adapter, source);
  } catch (e) {
    if (e instanceof MetalaError) return { available: false, reason: e.message };
    throw e;
  }
}

/** A device with the limits raised to what the adapter allows, and the features the engine can use. */
export interface GpuContext {
  device: GPUDevice;
  info: WebGpuInfo;
  hasF16: boolean;
  hasSubgroups: boolean;
  hasTimestamps: boolean;
}

export async function openDevice(): Promise<GpuContext> {
  const { adapter, source } = await requestAdapter();
  const info = describe(adapter, source);
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const l = adapter.limits;
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      requiredFeatures,
      requiredLimits: {
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      },
    });
  } catch (e) {
    throw new MetalaError("device", `WebGPU device request failed: ${(e as Error).message}`);
  }
  return {
    device,
    info,
    hasF16: requiredFeatures.includes("shader-f16"),
    hasSubgroups: requiredFeatures.includes("subgroups"),
    hasTimestamps: requiredFeatures.includes("timestamp-query"),
  };
}
