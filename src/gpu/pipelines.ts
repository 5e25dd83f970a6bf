import { MetalaError } from "../errors.js";
import type { GluActivation } from "../model/config.js";
import { constHeader, shaderText, type ShaderDefs } from "./shaders.js";

/** How a kernel sees each of its bindings, in binding order (all in group 0). */
export type BindingKind = "uniform" | "read" | "rw";

export interface KernelSpec {
  /** WGSL files concatenated in order after the constant header (helpers first). */
  files: string[];
  defs: ShaderDefs;
  /** Extra WGSL the host writes (e.g. the choice of GLU activation). */
  extra?: string;
  bindings: BindingKind[];
}

export type BufferPart = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

const perDevice = new WeakMap<GPUDevice, Pipelines>();

/** The device's one pipeline cache: engines of different models on one device share the kernels they have in common. */
export function pipelinesFor(device: GPUDevice): Pipelines {
  let p = perDevice.get(device);
  if (!p) {
    p = new Pipelines(device);
    perDevice.set(device, p);
  }
  return p;
}

/**
 * Compiles each distinct kernel once per device and shares bind group
 * layouts by binding signature, so a bind group made for one tile variant of
 * a kernel works with all its variants.
 */
export class Pipelines {
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  private readonly layouts = new Map<string, GPUBindGroupLayout>();

  constructor(readonly device: GPUDevice) {}

  layout(bindings: BindingKind[]): GPUBindGroupLayout {
    const key = bindings.join(",");
    let l = this.layouts.get(key);
    if (!l) {
      l = this.device.createBindGroupLayout({
        entries: bindings.map((k, binding) => ({
          binding,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: k === "uniform" ? "uniform" : k === "read" ? "read-only-storage" : "storage" },
        })),
      });
      this.layouts.set(key, l);
    }
    return l;
  }

  pipeline(spec: KernelSpec): Promise<GPUComputePipeline> {
    const key = JSON.stringify(spec);
    let p = this.pipelines.get(key);
    if (!p) {
      p = this.build(spec);
      p.catch(() => this.pipelines.delete(key));
      this.pipelines.set(key, p);
    }
    return p;
  }

  private async build(spec: KernelSpec): Promise<GPUComputePipeline> {
    const sources = await Promise.all(spec.files.map(shaderText));
    const code = constHeader(spec.defs) + (spec.extra ?? "") + "\n" + sources.join("\n");
    const module = this.device.createShaderModule({ code, label: spec.files.at(-1) });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === "error");
    if (errors.length)
      throw new MetalaError("device", `WGSL ${spec.files.at(-1)}: ${errors.map((m) => `line ${m.lineNum}: ${m.message}`).join("; ")}`);
    try {
      return await this.device.createComputePipelineAsync({
        label: spec.files.at(-1),
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [this.layout(spec.bindings)] }),
        compute: { module, entryPoint: "main" },
      });
    } catch (e) {
      // (Dawn's first line says why; the rest is its call stack)
      throw new MetalaError("device", `cannot build the ${spec.files.at(-1)} pipeline: ${(e as Error).message.split("\n")[0]}`);
    }
  }

  bindGroup(bindings: BindingKind[], parts: BufferPart[], label?: string): GPUBindGroup {
    return this.device.createBindGroup({
      label,
      layout: this.layout(bindings),
      entries: parts.map((r, binding) => ({ binding, resource: "buffer" in r ? r : { buffer: r } })),
    });
  }
}

/** The `glu_act` the GEMM's gated epilogue calls, per the config's activation name. */
export function gluActSource(act: GluActivation): string {
  const fn: Record<GluActivation, string> = {
    silu: "act_silu",
    swish: "act_silu",
    gelu: "act_gelu",
    relu: "act_relu",
    elu: "act_elu",
    sigmoid: "act_sigmoid",
    leak: "act_leak",
    "1+elu": "act_1_elu",
    "2+elu": "act_2_elu",
    sine: "act_sine",
  };
  return `fn glu_act(x: f32) -> f32 { return ${fn[act]}(x); }`;
}

/** A uniform buffer of u32 words, written once. */
export function uniformU32(device: GPUDevice, words: number[], label?: string): GPUBuffer {
  const size = Math.max(16, Math.ceil((words.length * 4) / 16) * 16);
  const b = device.createBuffer({ size, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, mappedAtCreation: true, label });
  new Uint32Array(b.getMappedRange()).set(words);
  b.unmap();
  return b;
}

export function storageBuffer(device: GPUDevice, bytes: number, label?: string, extraUsage = 0): GPUBuffer {
  return device.createBuffer({
    size: Math.max(16, Math.ceil(bytes / 16) * 16),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC | extraUsage,
    label,
  });
}

export function uploadF32(device: GPUDevice, data: Float32Array, label?: string): GPUBuffer {
  const b = device.createBuffer({
    size: Math.max(16, Math.ceil(data.byteLength / 16) * 16),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    mappedAtCreation: true,
    label,
  });
  new Float32Array(b.getMappedRange(), 0, data.length).set(data);
  b.unmap();
  return b;
}
