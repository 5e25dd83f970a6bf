import { MetalaError } from "../errors.js";
import type { GenerationResult } from "../generate/generate.js";
import { loadModel, type LoadProgress } from "../runtime/load.js";
import type { DeviceChoice } from "../runtime/scheduler.js";
import { choiceFlag, intFlag, numberFlag, parseFlags } from "./args.js";
import { DEVICES, DTYPES, requireWebGpu, resolveModelDir } from "./common.js";
import { loadTokenizerFromDir } from "../tokenizer/node.js";

const FLAGS = {
  model: { type: "string" },
  prompt: { type: "string" },
  tokens: { type: "string" },
  "max-tokens": { type: "string" },
  temperature: { type: "string" },
  "top-k": { type: "string" },
  "top-p": { type: "string" },
  "min-p": { type: "string" },
  "repetition-penalty": { type: "string" },
  seed: { type: "string" },
  stop: { type: "string", multiple: true },
  "ignore-eos": { type: "boolean" },
  device: { type: "string" },
  "prefill-device": { type: "string" },
  "decode-device": { type: "string" },
  dtype: { type: "string" },
  threads: { type: "string" },
  json: { type: "boolean" },
} as const;

function tokenList(list: string): number[] {
  return list.split(",").map((p, i) => {
    const s = p.trim();
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s)))
      throw new MetalaError("usage", `--tokens: item ${i + 1} (${JSON.stringify(s)}) is not a token id`);
    return Number(s);
  });
}

/** A one-line bar redrawn in place; only where stderr is a terminal (logs and pipes get nothing). */
function progressBar(): { update(p: LoadProgress): void; done(): void } {
  if (!process.stderr.isTTY) return { update() {}, done() {} };
  let last = "";
  return {
    update(p) {
      const width = 30;
      const frac = p.totalBytes > 0 ? Math.min(1, p.loadedBytes / p.totalBytes) : 1;
      const filled = Math.round(frac * width);
      const label = p.phase === "weights" ? `loading weights ${(p.loadedBytes / 1e6).toFixed(1)}/${(p.totalBytes / 1e6).toFixed(1)} MB` : "measuring engines";
      const line = `[${"#".repeat(filled)}${" ".repeat(width - filled)}] ${Math.round(frac * 100)}% ${label}`;
      if (line !== last) process.stderr.write(`\r${line}\x1b[K`);
      last = line;
    },
    done() {
      if (last) process.stderr.write("\r\x1b[K");
    },
  };
}

function rate(tokens: number, ms: number): number {
  return ms > 0 ? (tokens * 1000) / ms : 0;
}

function summary(r: GenerationResult): string {
  const s = r.stats;
  const decodeSteps = Math.max(0, s.generatedTokens - 1);
  const decode = s.decodeEngines.length > 0 ? s.decodeEngines.join(" then ") : "none";
  return (
    `prefill: ${s.prefillEngine || "none"}, ${s.promptTokens} tokens, ${rate(s.promptTokens, s.prefillMs).toFixed(1)} tok/s; ` +
    `decode: ${decode}, ${decodeSteps} tokens, ${rate(decodeSteps, s.decodeMs).toFixed(1)} tok/s; ` +
    `first token after ${s.timeToFirstTokenMs.toFixed(0)} ms; stopped by ${r.finishReason}`
  );
}

function jsonResult(r: GenerationResult): object {
  const s = r.stats;
  const decodeSteps = Math.max(0, s.generatedTokens - 1);
  return {
    text: r.text,
    tokens: r.tokens,
    finish_reason: r.finishReason,
    prompt_tokens: s.promptTokens,
    prefill_engine: s.prefillEngine,
    prefill_ms: s.prefillMs,
    prefill_tokens_per_s: rate(s.promptTokens, s.prefillMs),
    decode_engines: s.decodeEngines,
    decode_ms: s.decodeMs,
    decode_tokens_per_s: rate(decodeSteps, s.decodeMs),
    time_to_first_token_ms: s.timeToFirstTokenMs,
  };
}

/** metala generate: continues a prompt, streaming the text to stdout and what ran where to stderr. */
export async function main(args: string[]): Promise<void> {
  const f = parseFlags(args, FLAGS, "generate");
  const prompt = f.prompt as string | undefined;
  const tokens = typeof f.tokens === "string" ? tokenList(f.tokens) : undefined;
  if ((prompt === undefined) === (tokens === undefined)) throw new MetalaError("usage", "generate: give exactly one of --prompt TEXT or --tokens 1,2,3");
  if (prompt === "") throw new MetalaError("usage", "generate: --prompt is empty");
  const deviceChoices = DEVICES as readonly DeviceChoice[];
  const device = choiceFlag(f.device as string | undefined, "device", deviceChoices, "auto");
  const prefillDevice = choiceFlag(f["prefill-device"] as string | undefined, "prefill-device", deviceChoices, device);
  const decodeDevice = choiceFlag(f["decode-device"] as string | undefined, "decode-device", deviceChoices, device);
  const dtype = choiceFlag(f.dtype as string | undefined, "dtype", DTYPES, "f32");
  const threads = f.threads === undefined ? undefined : intFlag(f.threads as string, "threads", 1, 256, 1);
  const temperature = numberFlag(f.temperature as string | undefined, "temperature", 0, 100, 0);
  const options = {
    maxNewTokens: intFlag(f["max-tokens"] as string | undefined, "max-tokens", 0, 1_000_000, 128),
    temperature,
    topK: intFlag(f["top-k"] as string | undefined, "top-k", 0, 1_000_000_000, 0),
    topP: numberFlag(f["top-p"] as string | undefined, "top-p", 1e-9, 1, 1),
    minP: numberFlag(f["min-p"] as string | undefined, "min-p", 0, 1, 0),
    repetitionPenalty: numberFlag(f["repetition-penalty"] as string | undefined, "repetition-penalty", 1e-3, 100, 1),
    seed: f.seed === undefined ? undefined : intFlag(f.seed as string, "seed", 0, Number.MAX_SAFE_INTEGER, 0),
    stop: (f.stop as unknown as string[] | undefined) ?? [],
    ignoreEos: f["ignore-eos"] === true,
  };
  await requireWebGpu(prefillDevice, decodeDevice);
  const dir = resolveModelDir(f.model as string | undefined);
  // The tokenizer first: a prompt the model cannot read should fail before gigabytes of weights load.
  const tokenizer = await loadTokenizerFromDir(dir).catch((e) => {
    if (prompt === undefined && e instanceof MetalaError && e.kind === "io") return null; // token ids need no tokenizer
    throw e;
  });

  const bar = progressBar();
  const model = await loadModel(dir, {
    prefillDevice,
    decodeDevice,
    dtype,
    threads,
    tokenizer,
    onProgress: (p) => bar.update(p),
    onWarning: (m) => {
      bar.done();
      process.stderr.write(`metala: warning: ${m}\n`);
    },
  }).finally(() => bar.done());

  // Ctrl-C ends the generation cleanly (what was printed stays) instead of killing the process mid-write.
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once("SIGINT", onSigint);
  try {
    const session = model.createSession();
    const generation = session.generate(tokens ?? prompt!, { ...options, signal: abort.signal });
    for await (const piece of generation) if (!f.json && piece.text) process.stdout.write(piece.text);
    const result = generation.result;
    if (f.json) process.stdout.write(JSON.stringify(jsonResult(result)) + "\n");
    else {
      if (!model.tokenizer) process.stdout.write(result.tokens.join(","));
      process.stdout.write("\n");
    }
    process.stderr.write(`metala: ${summary(result)}\n`);
  } finally {
    process.off("SIGINT", onSigint);
    await model.dispose();
  }
}
