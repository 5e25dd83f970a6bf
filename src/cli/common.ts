import { statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Engine, EngineKind } from "../engine.js";
import { MetalaError } from "../errors.js";
import type { WeightSource } from "../model/source.js";
import { probeDevices } from "../runtime/devices.js";
import { createEngineOfKind } from "../runtime/engines.js";

/** The package's root folder (dist/cli/ is two levels below it). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The small model shipped in the package, used when no --model is given. */
export const DEFAULT_MODEL_DIR = join(PACKAGE_ROOT, "models", "metala-brown");

export const DEVICES = ["reference", "wasm", "webgpu", "auto"] as const;
export type Device = (typeof DEVICES)[number];
export const DTYPES = ["f32", "f16", "q8", "q4"] as const;
export type Dtype = (typeof DTYPES)[number];

/** The model folder for --model, or the embedded one; checked to exist so that later errors are about its contents. */
export function resolveModelDir(flag: string | undefined): string {
  const dir = flag === undefined ? DEFAULT_MODEL_DIR : resolve(flag);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    // reported below
  }
  if (flag === undefined) {
    let hasConfig = false;
    try {
      hasConfig = isDir && statSync(join(dir, "config.json")).isFile();
    } catch {
      // reported below
    }
    if (!hasConfig) throw new MetalaError("io", `the embedded model ${dir} is not in this build (no config.json there); pass --model DIR`);
  } else if (!isDir) throw new MetalaError("io", `--model ${flag}: no such folder`);
  return dir;
}

/** Opens a model folder's weights (config checked, every tensor located; data read on demand). */
export async function openModel(dir: string): Promise<WeightSource> {
  const { openCheckpoint } = await import("../model/checkpoint.js");
  return openCheckpoint(dir);
}

/**
 * The engine kind for a --device value. `auto` takes a hardware GPU for the
 * parallel prefill when there is one and the CPU engine otherwise; it never
 * picks a software adapter (SwiftShader), which is far slower than WASM.
 */
export async function resolveDevice(device: Device, role: "prefill" | "decode" = "prefill"): Promise<EngineKind> {
  if (device !== "auto") {
    await requireWebGpu(device);
    return device;
  }
  const probe = await probeDevices();
  if (role === "prefill" && probe.webgpu.available && !probe.webgpuIsSoftware) return "webgpu";
  return probe.wasm ? "wasm" : "reference";
}

/**
 * Where a command names the webgpu engine: whether there is an adapter at
 * all, asked before Dawn is loaded into this process (probeDevices asks a
 * child in Node), so that a machine without one gets one line, not Dawn's
 * and the Vulkan loader's native warnings about the drivers they reject
 * first. It costs a start-up: ~0.1 s without an adapter, 0.2-0.7 s on an
 * H200 (the child starts the driver too), on top of a model's load.
 */
export async function requireWebGpu(...devices: string[]): Promise<void> {
  if (!devices.includes("webgpu")) return;
  const { webgpu } = await probeDevices();
  if (!webgpu.available) throw new MetalaError("device", webgpu.reason ?? "WebGPU is not available");
}

/**
 * Imports a module that a build may lack (engines are optional pieces), or
 * returns undefined when that module itself is absent. The specifier is a
 * variable so that TypeScript does not require the file at compile time.
 */
export async function importOptional<T>(specifier: string): Promise<T | undefined> {
  try {
    return (await import(specifier)) as T;
  } catch (e) {
    // only the module asked for counts as absent; a module it imports being absent is a broken build
    const err = e as NodeJS.ErrnoException & { url?: string };
    if (err.code === "ERR_MODULE_NOT_FOUND" && err.url === new URL(specifier, import.meta.url).href) return undefined;
    throw e;
  }
}

/** Loads `source` into the engine of the given kind (imported on demand: a missing engine costs nothing until asked for). */
export function createEngine(kind: EngineKind, source: WeightSource, options: { dtype: Dtype; threads?: number }): Promise<Engine> {
  return createEngineOfKind(kind, source, options);
}
