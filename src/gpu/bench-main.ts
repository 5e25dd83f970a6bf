/**
 * The GPU engine's detailed benchmark, beyond `metala bench --device webgpu`:
 *
 *   node dist/gpu/bench-main.js [--preset metala-380m | --model DIR] [--dtype f32|f16]
 *        [--lengths 512,2048,8192,32768] [--calls 3] [--decode-steps 64] [--gemm [--gemm-lengths 512,1024,2048]]
 *
 * prints one JSON object per line: the adapter; with --gemm the projection
 * GEMM alone per tile shape and split-K count on the model's shapes (at
 * T = --gemm-lengths, by default 512, 1024, 2048; the data gemm.ts' launch
 * rules were read from, with lengths in between); per prompt
 * length the prefill speed (the best and the median of --calls calls), effective TFLOP/s (2 x parameters x tokens /
 * time), the GLA's and GEMMs' shares of the GPU time and each GLA kernel's
 * time; then decode tokens/s.
 */
import { intFlag, tokenCountsFlag } from "../cli/args.js";
import { parameterCount } from "../model/config.js";
import { openCheckpoint } from "../model/checkpoint.js";
import { presetSource } from "../model/preset.js";
import { benchGemm, benchWebGpuPrefill } from "./bench.js";
import { openDevice } from "./device.js";
import { createWebGpuEngine } from "./engine.js";

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}

/** A flag parsed by the CLI's own checks (cli/args.ts); a bad value ends the run with its one line. */
function checked<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    console.error((e as Error).message);
    process.exit(2);
  }
}

const lengths = checked(() => tokenCountsFlag(flag("lengths"), "lengths", "512,2048,8192,32768"));
const calls = checked(() => intFlag(flag("calls"), "calls", 1, 1000, 3));
const gemmLengths = checked(() => tokenCountsFlag(flag("gemm-lengths"), "gemm-lengths", "512,1024,2048"));
const ctx = await openDevice();
const { vendor, architecture, device, isFallbackAdapter, features, limits } = ctx.info;
console.log(JSON.stringify({ adapter: { vendor, architecture, device, isFallbackAdapter, features, limits } }));
const modelDir = flag("model");
const source = modelDir ? await openCheckpoint(modelDir) : presetSource(flag("preset") ?? "metala-380m");
const c = source.config;
if (process.argv.includes("--gemm")) {
  const d = c.hiddenSize;
  const shapes = gemmLengths.flatMap((M) => [
    { M, N: 2 * c.keyDim + 2 * d, K: d },
    { M, N: d, K: d, epilogue: "add" as const },
    { M, N: 2 * c.gluDim, K: d, epilogue: "glu" as const },
    { M, N: d, K: c.gluDim, epilogue: "add" as const },
  ]);
  const wtype = flag("dtype") === "f16" ? "f16" : "f32";
  for (const r of await benchGemm(shapes, ctx, c.gluAct, undefined, wtype)) console.log(JSON.stringify({ gemm: { ...r, wtype } }));
}
const params = parameterCount(c, source.tiedHead);
const t0 = performance.now();
const dtype = flag("dtype") === "f16" ? "f16" : "f32";
const engine = await createWebGpuEngine(source, { context: ctx, dtype });
console.log(JSON.stringify({ model: source.label, dtype, params, load_s: (performance.now() - t0) / 1000 }));
const r = await benchWebGpuPrefill(engine, lengths, params, Number(flag("decode-steps") ?? 64), calls);
for (const p of r.prefill) console.log(JSON.stringify({ prefill: p }));
console.log(JSON.stringify({ decode_tokens_per_s: r.decodeTokensPerS, decode: r.decode }));
await engine.dispose();
ctx.device.destroy();
