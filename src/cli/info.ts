import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { MetalaError } from "../errors.js";
import { parameterCount, type MetalaConfig } from "../model/config.js";
import { expectedTensors } from "../model/names.js";
import type { StoredDType, WeightSource } from "../model/source.js";
import { loadTokenizerFromDir } from "../tokenizer/node.js";
import { parseFlags } from "./args.js";
import { probeDevices } from "../runtime/devices.js";
import { importOptional, openModel, resolveModelDir } from "./common.js";

const FLAGS = {
  model: { type: "string" },
  preset: { type: "string" },
  json: { type: "boolean" },
} as const;

const DTYPE_BYTES: Record<StoredDType, number> = { F32: 4, F16: 2, BF16: 2 };
/** A Transformer's KV cache is usually kept in 16-bit floats. */
const KV_BYTES = 2;
const KV_CONTEXTS = [1024, 8192];

interface TokenizerInfo {
  kind?: string;
  vocabSize?: number;
  bosTokenId?: number | null;
  eosTokenId?: number | null;
  specialTokens?: number;
  notes?: string[];
  error?: string;
}

interface EngineInfo {
  available: boolean;
  detail: string;
}

function storage(source: WeightSource): Record<string, { tensors: number; bytes: number }> {
  const byDtype: Record<string, { tensors: number; bytes: number }> = {};
  for (const spec of expectedTensors(source.config)) {
    if (!source.has(spec.name)) continue;
    const dtype = source.storedDType(spec.name);
    const entry = (byDtype[dtype] ??= { tensors: 0, bytes: 0 });
    entry.tensors++;
    entry.bytes += source.shape(spec.name).reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
  }
  return byDtype;
}

/** Bytes of the weight files (model.safetensors or its shards), headers included. */
async function weightFileBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) if (/^model(-\d+-of-\d+)?\.safetensors$/.test(name)) total += (await stat(join(dir, name))).size;
  return total;
}

async function tokenizerInfo(dir: string, config: MetalaConfig): Promise<TokenizerInfo> {
  try {
    const t = await loadTokenizerFromDir(dir);
    const notes = [...t.notes];
    if (t.vocabSize > config.vocabSize)
      notes.push(`the tokenizer has ${t.vocabSize} ids but the model only ${config.vocabSize}: ids past ${config.vocabSize - 1} cannot be run`);
    return { kind: t.kind, vocabSize: t.vocabSize, bosTokenId: t.bosTokenId, eosTokenId: t.eosTokenId, specialTokens: t.specialTokens.size, notes };
  } catch (e) {
    if (e instanceof MetalaError) return { error: e.message };
    throw e;
  }
}

/** Per-layer S [H, K, V] and conv [3, d], f32: what one sequence costs at any context length. */
function stateBytes(c: MetalaConfig): number {
  return c.numLayers * (c.numHeads * c.headKeyDim * c.headValueDim + 3 * c.hiddenSize) * 4;
}

async function engines(): Promise<Record<string, EngineInfo>> {
  const out: Record<string, EngineInfo> = { reference: { available: true, detail: "TypeScript, float64 activations (slow; the oracle)" } };

  // the devices as --device auto sees them, probed once: the CPU engine's features, and the adapter asked in a
  // child process (in Node), so Dawn's and the Vulkan loader's native messages stay out of this one's stderr
  const probe = await probeDevices();
  const f = probe.wasm as { simd: boolean; relaxedSimd: boolean; threads: boolean; cores: number } | null;
  if (f === null) out.wasm = { available: false, detail: "not in this build" };
  else {
    const features = `SIMD ${f.simd ? "yes" : "no"}, relaxed SIMD ${f.relaxedSimd ? "yes" : "no"}, threads ${f.threads ? `yes (${f.cores} cores)` : "no"}`;
    out.wasm = f.simd ? { available: true, detail: features } : { available: false, detail: `this host's WebAssembly lacks SIMD (${features})` };
  }

  const gpuEngine = await importOptional<object>("../gpu/engine.js");
  const g = probe.webgpu;
  const adapter = g.available
    ? `adapter ${[g.vendor, g.architecture, g.description].filter(Boolean).join(" ") || "(unnamed)"}${g.isFallbackAdapter ? " (software fallback)" : ""} via ${g.source}`
    : (g.reason ?? "no adapter");
  out.webgpu = gpuEngine === undefined ? { available: false, detail: "engine not in this build" } : { available: g.available, detail: adapter };
  return out;
}

const mb = (bytes: number) => (bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : bytes >= 1e6 ? `${(bytes / 1e6).toFixed(2)} MB` : `${(bytes / 1e3).toFixed(1)} KB`);
const count = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : `${(n / 1e3).toFixed(1)}K`);

export async function main(args: string[]): Promise<void> {
  const flags = parseFlags(args, FLAGS, "info");
  if (flags.model !== undefined && flags.preset !== undefined) throw new MetalaError("usage", "info: give --model or --preset, not both");

  let source: WeightSource;
  let dir: string | undefined;
  if (typeof flags.preset === "string") {
    const { presetSource } = await import("../model/preset.js");
    source = presetSource(flags.preset);
  } else {
    dir = resolveModelDir(flags.model as string | undefined);
    source = await openModel(dir);
  }
  try {
    const c = source.config;
    const tokenizer: TokenizerInfo = dir === undefined ? { error: "a preset has no tokenizer" } : await tokenizerInfo(dir, c);
    const info = {
      model: dir ?? `preset ${flags.preset}`,
      config: {
        hiddenSize: c.hiddenSize,
        numLayers: c.numLayers,
        numHeads: c.numHeads,
        headKeyDim: c.headKeyDim,
        headValueDim: c.headValueDim,
        gluDim: c.gluDim,
        gluAct: c.gluAct,
        vocabSize: c.vocabSize,
        normType: c.normType,
        bias: c.bias,
        noScaleEmbedding: c.noScaleEmbedding,
        bosTokenId: c.bosTokenId,
        eosTokenId: c.eosTokenId,
      },
      parameters: parameterCount(c, source.tiedHead),
      tiedHead: source.tiedHead,
      storage: {
        dtypes: storage(source),
        tensorBytes: source.storedBytes,
        fileBytes: dir === undefined ? null : await weightFileBytes(dir),
      },
      tokenizer,
      state: {
        bytesPerSequence: stateBytes(c),
        transformerKvCacheBytes: Object.fromEntries(KV_CONTEXTS.map((n) => [n, n * 2 * c.numLayers * c.hiddenSize * KV_BYTES])),
      },
      engines: await engines(),
    };

    if (flags.json) {
      process.stdout.write(JSON.stringify(info, null, 2) + "\n");
      return;
    }
    const dtypes = Object.entries(info.storage.dtypes).map(([d, e]) => `${d} ${e.tensors} tensors ${mb(e.bytes)}`);
    const t = tokenizer;
    const lines = [
      `model        ${info.model}`,
      `config       d ${c.hiddenSize}, ${c.numLayers} layers, ${c.numHeads} heads (K ${c.headKeyDim}, V ${c.headValueDim}), GLU ${c.gluDim} ${c.gluAct}, vocab ${c.vocabSize}`,
      `             norm ${c.normType}, GLU bias ${c.bias}, embedding scale ${c.noScaleEmbedding ? "off" : "sqrt(d)"}`,
      `parameters   ${info.parameters.toLocaleString("en-US")} (${count(info.parameters)})`,
      `weights      ${dtypes.join(", ")}` + (dir === undefined ? " (generated, nothing on disk)" : `; files ${mb(info.storage.fileBytes ?? 0)} on disk`),
      `lm head      ${source.tiedHead ? "tied to the embedding" : "separate (lm_head.weight)"}`,
      t.error !== undefined
        ? `tokenizer    none: ${t.error}`
        : `tokenizer    ${t.kind}, ${t.vocabSize} ids, ${t.specialTokens} special, bos ${t.bosTokenId ?? "-"}, eos ${t.eosTokenId ?? "-"}`,
      ...(t.notes ?? []).map((n) => `             note: ${n}`),
      `state        ${mb(info.state.bytesPerSequence)} per sequence, at any context length`,
      `             (a Transformer of this shape: KV cache ${KV_CONTEXTS.map((n) => `${mb(info.state.transformerKvCacheBytes[n])} at ${n / 1024}k tokens`).join(", ")}, f16)`,
      ...Object.entries(info.engines).map(([k, e], i) => `${i === 0 ? "engines      " : "             "}${k}: ${e.available ? "" : "unavailable: "}${e.detail}`),
    ];
    process.stdout.write(lines.join("\n") + "\n");
  } finally {
    await source.close();
  }
}
