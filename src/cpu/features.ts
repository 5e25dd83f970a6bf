/**
 * What this host's WebAssembly can do, probed with WebAssembly.validate on
 * tiny hand-assembled modules (no flags are required; Node 20 only has
 * relaxed SIMD behind --experimental-wasm-relaxed-simd, so it is detected,
 * never assumed). METALA_RELAXED_SIMD=0 in Node's environment reports it
 * absent, so the SIMD128 build runs even where relaxed SIMD validates.
 */
export interface WasmFeatures {
  simd: boolean;
  relaxedSimd: boolean;
  /** Shared memory and workers usable: SharedArrayBuffer present (and, in a browser, cross-origin isolated). */
  threads: boolean;
  /** Logical cores reported by the host. */
  cores: number;
}

// (module (func (result v128) v128.const i32x4 0 0 0 0))
const SIMD_PROBE = [0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11];
// (module (func (param v128 v128 v128) (result v128) local.get 0 local.get 1 local.get 2 f32x4.relaxed_madd))
const RELAXED_PROBE = [0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 3, 123, 123, 123, 1, 123, 3, 2, 1, 0, 10, 13, 1, 11, 0, 32, 0, 32, 1, 32, 2, 253, 133, 2, 11];

function validates(bytes: number[]): boolean {
  try {
    return typeof WebAssembly === "object" && WebAssembly.validate(new Uint8Array(bytes));
  } catch {
    return false;
  }
}

function hostCores(): number {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  if (nav?.hardwareConcurrency) return nav.hardwareConcurrency;
  return 1;
}

function threadsUsable(): boolean {
  if (typeof SharedArrayBuffer === "undefined" || typeof Atomics === "undefined") return false;
  const g = globalThis as { crossOriginIsolated?: boolean; process?: unknown };
  if (g.crossOriginIsolated === false && !g.process) return false;
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return true;
  } catch {
    return false;
  }
}

let cached: WasmFeatures | undefined;

function relaxedSimdRefused(): boolean {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> } };
  return g.process?.env?.METALA_RELAXED_SIMD === "0";
}

/**
 * For programs that own their Node process (the metala CLI): where this V8
 * has relaxed SIMD only behind its flag (Node 20), turn the flag on, before
 * any module is compiled; workers started later inherit it. Not done by the
 * library itself: V8 flags are the embedding program's choice. Returns
 * whether relaxed SIMD validates afterwards.
 */
export async function allowRelaxedSimd(): Promise<boolean> {
  if (relaxedSimdRefused()) return false;
  if (!validates(RELAXED_PROBE)) {
    const g = globalThis as { process?: { versions?: { node?: string } } };
    // before Node 20 the flag enabled an incomplete implementation
    if (Number(g.process?.versions?.node?.split(".")[0] ?? 0) < 20) return false;
    const v8 = await import("node:v8");
    v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
    cached = undefined;
  }
  return validates(RELAXED_PROBE);
}

export async function wasmFeatures(): Promise<WasmFeatures> {
  if (!cached) {
    let cores = hostCores();
    const g = globalThis as { process?: { versions?: { node?: string } } };
    if (g.process?.versions?.node) {
      const os = await import("node:os");
      cores = typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
    }
    cached = { simd: validates(SIMD_PROBE), relaxedSimd: !relaxedSimdRefused() && validates(RELAXED_PROBE), threads: threadsUsable(), cores };
  }
  return cached;
}
