/**
 * `metala bench`: decode and prefill speed of one engine on one model, set
 * against limits measured in the same run: decode against the engine's own
 * memory bandwidth (the roofline of a bandwidth-bound decode step), prefill
 * against the peak rate of the multiply-add instructions its products use;
 * and peak memory.
 *
 *   metala bench [--model DIR | --preset NAME] [--device wasm|webgpu] [--dtype f32|f16|q8|q4]
 *                [--threads N] [--prompt-tokens 512] [--decode-tokens 64] [--repeats 3] [--json]
 *
 * Engines plug in through BENCH_DEVICES: each loads a model into an engine
 * that offers a read-bandwidth probe and a compute probe, run with the same
 * threads, or on the same device, in the same process.
 */
import type { Engine } from "../engine.js";
import { MetalaError } from "../errors.js";
import type { WeightSource } from "../model/source.js";
import { choiceFlag, intFlag, parseFlags } from "./args.js";
import { DTYPES, requireWebGpu, type Dtype } from "./common.js";
import { warmUp } from "../runtime/warm-up.js";

type BenchDType = Dtype;

/** What bench measures an engine by, beyond the Engine interface (the wasm and the webgpu engine both offer it). */
export interface Benchable extends Engine {
  readonly dtype: string;
  /** Bytes one decode step reads from memory. */
  readonly weightBytesPerToken: number;
  /** Bytes of weights held by the engine (the peak-RSS budget is 1.2x this + 100 MB). */
  readonly weightBytes: number;
  /** The prefill's compute: multiply-adds of the layers' products per prompt token. */
  readonly macsPerPromptToken: number;
  /** Read bandwidth of the engine's memory in GB/s, same threads or device, this process. */
  probeBandwidth(): number | Promise<number>;
  /** Peak rate in GMAC/s of the multiply-adds its products use, same threads or device, this process. */
  probeCompute(): number | Promise<number>;
}

export interface BenchTarget {
  engine: Benchable;
  threads: number;
}

export type BenchDevice = (source: WeightSource, opts: { dtype: BenchDType; threads?: number }) => Promise<BenchTarget>;

export const BENCH_DEVICES: Record<string, BenchDevice> = {
  async wasm(source, opts) {
    const { createWasmEngine } = await import("../cpu/engine.js");
    const engine = await createWasmEngine(source, opts);
    return { engine, threads: engine.threads };
  },
  async webgpu(source, opts) {
    const { createWebGpuEngine } = await import("../gpu/engine.js");
    const engine = await createWebGpuEngine(source, { dtype: opts.dtype });
    // one host thread drives the GPU
    return { engine, threads: 1 };
  },
};

async function openSource(model: string | undefined, preset: string | undefined): Promise<WeightSource> {
  if (model !== undefined && preset !== undefined) throw new MetalaError("usage", "bench: give --model or --preset, not both");
  if (model !== undefined) {
    const { openCheckpoint } = await import("../model/checkpoint.js");
    return openCheckpoint(model);
  }
  const { presetSource } = await import("../model/preset.js");
  return presetSource(preset ?? "metala-380m");
}

/** Seeded token ids, so that runs are comparable. */
function tokens(n: number, vocab: number, seed: number): number[] {
  let x = seed;
  return Array.from({ length: n }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x % vocab;
  });
}

function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));

export async function main(args: string[]): Promise<void> {
  const f = parseFlags(
    args,
    {
      model: { type: "string" },
      preset: { type: "string" },
      device: { type: "string" },
      dtype: { type: "string" },
      threads: { type: "string" },
      "prompt-tokens": { type: "string" },
      "decode-tokens": { type: "string" },
      repeats: { type: "string" },
      json: { type: "boolean" },
    },
    "bench",
  );
  const deviceName = choiceFlag(f.device as string | undefined, "device", Object.keys(BENCH_DEVICES), "wasm");
  const dtype = choiceFlag(f.dtype as string | undefined, "dtype", DTYPES, "f32");
  const threads = f.threads === undefined ? undefined : intFlag(f.threads as string, "threads", 1, 256, 1);
  const promptTokens = intFlag(f["prompt-tokens"] as string | undefined, "prompt-tokens", 1, 1 << 20, 512);
  const decodeTokens = intFlag(f["decode-tokens"] as string | undefined, "decode-tokens", 1, 1 << 20, 64);
  const repeats = intFlag(f.repeats as string | undefined, "repeats", 1, 100, 3);

  await requireWebGpu(deviceName);
  const source = await openSource(f.model as string | undefined, f.preset as string | undefined);
  const t0 = performance.now();
  const target = await BENCH_DEVICES[deviceName](source, { dtype, threads });
  const { engine } = target;
  const loadSeconds = (performance.now() - t0) / 1000;
  const vocab = source.config.vocabSize;
  const session = engine.createSession();

  // warm-up at the measured length: the wasm tiers compile the hot kernels,
  // a GPU driver sets up the pipelines of this shape and raises its clocks
  const warmTokens = tokens(promptTokens, vocab, 7);
  await warmUp(() => session.prefill(warmTokens, "last"));
  for (let i = 0; i < 4; i++) await session.step(i % vocab);

  // the fastest of `repeats` prefills: on a shared machine the slower ones
  // measure the neighbours; likewise the compute probe, each run right
  // after a prefill
  const prompt = tokens(promptTokens, vocab, 1);
  let prefillSeconds = Infinity;
  let macRate = 0;
  let last: Float32Array[] = [];
  for (let r = 0; r < repeats; r++) {
    session.reset();
    const t = performance.now();
    last = await session.prefill(prompt, "last");
    prefillSeconds = Math.min(prefillSeconds, (performance.now() - t) / 1000);
    // after the prefill, not before it: right after the GPU probe's burst of multiply-adds the
    // prefill ran slower in two runs of three (H200, 380m f32, best of 3, K tok/s: 37.3, 39.2,
    // 38.9 with the probe before; 37.1, 41.7, 41.1 after)
    macRate = Math.max(macRate, await engine.probeCompute());
  }

  // decode and the bandwidth probe alike: the best of `repeats`, each decode
  // run right after a probe, so that both see the machine in the same state
  // (on a shared host either drifts by a quarter within minutes)
  let next = argmax(last[0]);
  let bandwidth = 0;
  let decodeRate = 0;
  for (let r = 0; r < repeats; r++) {
    bandwidth = Math.max(bandwidth, await engine.probeBandwidth());
    const t = performance.now();
    for (let i = 0; i < decodeTokens; i++) next = argmax(await session.step(next));
    decodeRate = Math.max(decodeRate, decodeTokens / ((performance.now() - t) / 1000));
  }

  const roofline = (bandwidth * 1e9) / engine.weightBytesPerToken;
  const prefillRate = promptTokens / prefillSeconds;
  // counts the classical multiply-adds: the wasm engine's large float products do 7/8 of them (Strassen,
  // src/cpu/matmat.ts), so f32/f16 prefill may pass this limit by up to 8/7 on those
  const prefillRoofline = (macRate * 1e9) / engine.macsPerPromptToken;
  const rssLimitMb = (1.2 * engine.weightBytes) / 1e6 + 100;
  const result = {
    device: deviceName,
    description: engine.description,
    model: source.label,
    dtype: engine.dtype,
    threads: target.threads,
    load_s: round(loadSeconds, 2),
    prompt_tokens: promptTokens,
    decode_tokens: decodeTokens,
    prefill_tokens_per_s: round(prefillRate, 2),
    decode_tokens_per_s: round(decodeRate, 2),
    prefill_vs_decode: round(prefillRate / decodeRate, 2),
    weight_bytes: engine.weightBytes,
    weight_bytes_per_token: engine.weightBytesPerToken,
    mem_bandwidth_gb_s: round(bandwidth, 2),
    decode_roofline_tokens_per_s: round(roofline, 2),
    decode_vs_roofline: round(decodeRate / roofline, 3),
    mac_rate_gmac_s: round(macRate, 2),
    macs_per_prompt_token: engine.macsPerPromptToken,
    prefill_roofline_tokens_per_s: round(prefillRoofline, 2),
    prefill_vs_roofline: round(prefillRate / prefillRoofline, 3),
    // the most prefill_vs_decode can be on this host: both rooflines' ratio
    prefill_vs_decode_limit: round(prefillRoofline / roofline, 2),
    peak_rss_mb: round(peakRssBytes() / 1e6, 1),
    peak_rss_limit_mb: round(rssLimitMb, 1),
  };
  session.dispose();
  await engine.dispose();
  await source.close();

  if (f.json) {
    process.stdout.write(JSON.stringify(result) + "\n");
    return;
  }
  const lines = [
    `${result.model} on ${result.description}`,
    `prefill  ${result.prefill_tokens_per_s} tok/s (${promptTokens} tokens)`,
    `decode   ${result.decode_tokens_per_s} tok/s (${decodeTokens} tokens), ${(100 * result.decode_vs_roofline).toFixed(1)}% of the roofline ${result.decode_roofline_tokens_per_s} tok/s`,
    `memory   ${result.mem_bandwidth_gb_s} GB/s read, ${(result.weight_bytes_per_token / 1e6).toFixed(1)} MB per token`,
    `compute  ${result.mac_rate_gmac_s} GMAC/s peak, ${(result.macs_per_prompt_token / 1e6).toFixed(1)}M MACs per prompt token: prefill at ${(100 * result.prefill_vs_roofline).toFixed(1)}% of the roofline ${result.prefill_roofline_tokens_per_s} tok/s; prefill/decode at most ${result.prefill_vs_decode_limit}x here`,
    `peak RSS ${result.peak_rss_mb} MB (limit ${result.peak_rss_limit_mb} MB)`,
  ];
  process.stdout.write(lines.join("\n") + "\n");
}
