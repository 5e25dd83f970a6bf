import type { Engine, EngineKind } from "../engine.js";
import { MetalaError } from "../errors.js";
import type { WeightSource } from "../model/source.js";
import { importEngineModule } from "./devices.js";

export type WeightDtype = "f32" | "f16" | "q8" | "q4";

export interface EngineOptions {
  dtype: WeightDtype;
  threads?: number;
  /** Where an engine's own warnings go (e.g. the CPU engine falling back to one thread). */
  warn?: (message: string) => void;
}

const FACTORIES: Record<EngineKind, { module: string; factory: string }> = {
  reference: { module: "../reference/engine.js", factory: "createReferenceEngine" },
  wasm: { module: "../cpu/engine.js", factory: "createWasmEngine" },
  webgpu: { module: "../gpu/engine.js", factory: "createWebGpuEngine" },
};

/** Loads the weights into an engine of this kind; the engine's module is imported only when asked for. */
export async function createEngineOfKind(kind: EngineKind, source: WeightSource, o: EngineOptions): Promise<Engine> {
  if (kind === "reference" && o.dtype !== "f32")
    throw new MetalaError("usage", `dtype ${o.dtype}: the reference engine runs f32 only`);
  const { module, factory } = FACTORIES[kind];
  const create = (await importEngineModule(module))?.[factory];
  if (typeof create !== "function") throw new MetalaError("device", `the ${kind} engine is not in this build`);
  return (create as (s: WeightSource, o: EngineOptions) => Promise<Engine>)(source, o);
}

const DTYPE_BYTES = { F32: 4, F16: 2, BF16: 2 } as const;

/**
 * The source, counting the stored bytes engines read from it, for a loading
 * progress bar: engines pull one tensor at a time, so tensor reads are the
 * natural unit of progress.
 */
export function withReadProgress(source: WeightSource, onRead: (bytes: number) => void): WeightSource {
  return new Proxy(source, {
    get(target, prop, receiver) {
      if (prop === "read")
        return async (name: string, dest?: Float32Array) => {
          const out = await target.read(name, dest);
          onRead(target.shape(name).reduce((a, b) => a * b, 1) * DTYPE_BYTES[target.storedDType(name)]);
          return out;
        };
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}
