import { open, readFile, type FileHandle } from "node:fs/promises";
import type { Engine, EngineKind, EngineSession } from "../engine.js";
import { MetalaError } from "../errors.js";
import { describeFsError } from "../io/node-file-source.js";
import type { WeightSource } from "../model/source.js";
import { loadTokenizerFromDir } from "../tokenizer/node.js";
import { choiceFlag, intFlag, parseFlags } from "./args.js";
import { createEngine, DEVICES, DTYPES, openModel, resolveDevice, resolveModelDir, type Dtype } from "./common.js";

const FLAGS = {
  model: { type: "string" },
  tokens: { type: "string" },
  text: { type: "string" },
  file: { type: "string" },
  device: { type: "string" },
  "prefill-device": { type: "string" },
  "decode-device": { type: "string" },
  "prefill-tokens": { type: "string" },
  dtype: { type: "string" },
  threads: { type: "string" },
  "chunk-tokens": { type: "string" },
  "dump-logits": { type: "string" },
  json: { type: "boolean" },
} as const;

/**
 * Logits kept at once while scoring a prefill chunk (floats): chunks are cut
 * to fit, so a long file costs the memory of one chunk, whatever its length.
 */
const LOGITS_BUDGET = 1 << 25;
const MAX_CHUNK = 1024;

function parseTokenList(list: string): number[] {
  const parts = list.split(",").map((s) => s.trim());
  return parts.map((p, i) => {
    if (!/^\d+$/.test(p) || !Number.isSafeInteger(Number(p)))
      throw new MetalaError("input", `--tokens: item ${i + 1} (${JSON.stringify(p)}) is not a token id (a non-negative integer)`);
    return Number(p);
  });
}

async function readTokens(flags: Record<string, string | boolean | undefined>, dir: string): Promise<number[]> {
  if (typeof flags.tokens === "string") return parseTokenList(flags.tokens);
  let text: string;
  if (typeof flags.text === "string") text = flags.text;
  else {
    const file = flags.file as string;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      throw new MetalaError("io", `--file ${file}: ${describeFsError(e)}`);
    }
  }
  const tokenizer = await loadTokenizerFromDir(dir);
  return tokenizer.encode(text);
}

function checkTokenRange(tokens: number[], vocabSize: number): void {
  tokens.forEach((id, i) => {
    if (id >= vocabSize)
      throw new MetalaError("input", `token id ${id} (position ${i}) is out of range: the model's vocabulary has ${vocabSize} tokens (ids 0..${vocabSize - 1})`);
  });
}

/** -log softmax(logits)[target], in float64. */
function tokenNll(logits: Float32Array, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return Math.log(sum) + max - logits[target];
}

/** Writes {"logits": [[...], ...]} one row at a time, so no logits are kept for it. */
class LogitsDump {
  private rows = 0;
  private constructor(private readonly file: FileHandle, private readonly path: string) {}

  static async create(path: string): Promise<LogitsDump> {
    try {
      const file = await open(path, "w");
      await file.write('{"logits": [');
      return new LogitsDump(file, path);
    } catch (e) {
      throw new MetalaError("io", `--dump-logits ${path}: cannot write (${describeFsError(e)})`);
    }
  }

  async row(logits: Float32Array): Promise<void> {
    const values = Array.from(logits, (v) => (Number.isFinite(v) ? String(v) : "null")).join(",");
    await this.guard(this.file.write(`${this.rows++ === 0 ? "" : ","}\n[${values}]`));
  }

  async finish(): Promise<void> {
    await this.guard(this.file.write("\n]}\n"));
    await this.file.close();
  }

  async abandon(): Promise<void> {
    await this.file.close().catch(() => {});
  }

  private async guard(p: Promise<unknown>): Promise<void> {
    try {
      await p;
    } catch (e) {
      throw new MetalaError("io", `--dump-logits ${this.path}: write failed (${describeFsError(e)})`);
    }
  }
}

interface Plan {
  prefillKind: EngineKind;
  decodeKind: EngineKind;
  prefillTokens: number;
  chunkTokens: number;
  dtype: Dtype;
  threads?: number;
}

interface Result {
  nllSum: number;
  scored: number;
}

/**
 * Scores tokens[1..] given their prefixes: prefill over the first
 * `prefillTokens` in chunks (the state carried by the session), then one step
 * per remaining token on the decode engine, in a session that starts from the
 * exported prefill state.
 */
async function score(
  source: WeightSource,
  tokens: number[],
  plan: Plan,
  dump: LogitsDump | null,
  engines: Map<EngineKind, Engine>,
): Promise<Result> {
  const engine = async (kind: EngineKind) => {
    if (!engines.has(kind)) engines.set(kind, await createEngine(kind, source, { dtype: plan.dtype, threads: plan.threads }));
    return engines.get(kind)!;
  };
  const T = tokens.length;
  let nllSum = 0;
  let scored = 0;
  const take = async (logits: Float32Array, pos: number) => {
    if (dump) await dump.row(logits);
    if (pos + 1 < T) {
      nllSum += tokenNll(logits, tokens[pos + 1]);
      scored++;
    }
  };

  const sessions: EngineSession[] = [];
  try {
    let session: EngineSession | null = null;
    if (plan.prefillTokens > 0) {
      session = (await engine(plan.prefillKind)).createSession();
      sessions.push(session);
      for (let start = 0; start < plan.prefillTokens; start += plan.chunkTokens) {
        const piece = tokens.slice(start, Math.min(plan.prefillTokens, start + plan.chunkTokens));
        const logits = await session.prefill(piece, "all");
        if (logits.length !== piece.length) throw new Error(`${plan.prefillKind} prefill returned ${logits.length} logits for ${piece.length} tokens`);
        for (let i = 0; i < logits.length; i++) await take(logits[i], start + i);
      }
    }
    if (plan.prefillTokens < T) {
      // A fresh session even on the same engine, so that the hand-over itself is exercised (and testable on any one engine).
      const next = (await engine(plan.decodeKind)).createSession();
      sessions.push(next);
      if (session !== null) await next.importState(await session.exportState());
      session = next;
      for (let pos = plan.prefillTokens; pos < T; pos++) await take(await session.step(tokens[pos]), pos);
    }
  } finally {
    for (const s of sessions) s.dispose();
  }
  return { nllSum, scored };
}

export async function main(args: string[]): Promise<void> {
  const flags = parseFlags(args, FLAGS, "eval");
  const given = (["tokens", "text", "file"] as const).filter((k) => flags[k] !== undefined);
  if (given.length !== 1)
    throw new MetalaError("usage", `eval: give exactly one of --tokens, --text, --file${given.length > 1 ? ` (got ${given.map((g) => "--" + g).join(", ")})` : ""}`);
  const device = choiceFlag(flags.device as string | undefined, "device", DEVICES, "auto");
  const prefillDevice = choiceFlag(flags["prefill-device"] as string | undefined, "prefill-device", DEVICES, device);
  const decodeDevice = choiceFlag(flags["decode-device"] as string | undefined, "decode-device", DEVICES, device);
  if ((flags["prefill-device"] !== undefined || flags["decode-device"] !== undefined) && flags["prefill-tokens"] === undefined)
    throw new MetalaError("usage", "eval: --prefill-device and --decode-device need --prefill-tokens N (where to switch)");
  const dtype = choiceFlag(flags.dtype as string | undefined, "dtype", DTYPES, "f32");
  const threads = flags.threads === undefined ? undefined : intFlag(flags.threads as string, "threads", 1, 1024, 1);
  const dir = resolveModelDir(flags.model as string | undefined);

  const source = await openModel(dir);
  let dump: LogitsDump | null = null;
  const engines = new Map<EngineKind, Engine>();
  try {
    const tokens = await readTokens(flags, dir);
    checkTokenRange(tokens, source.config.vocabSize);
    if (tokens.length < 2)
      throw new MetalaError("input", `eval needs at least 2 tokens to score (the first has no prediction), got ${tokens.length}`);
    const prefillTokens = intFlag(flags["prefill-tokens"] as string | undefined, "prefill-tokens", 0, tokens.length, tokens.length);
    const defaultChunk = Math.max(1, Math.min(MAX_CHUNK, Math.floor(LOGITS_BUDGET / source.config.vocabSize)));
    const chunkTokens = intFlag(flags["chunk-tokens"] as string | undefined, "chunk-tokens", 1, 1 << 20, defaultChunk);
    const plan: Plan = { prefillKind: await resolveDevice(prefillDevice, "prefill"), decodeKind: await resolveDevice(decodeDevice, "decode"), prefillTokens, chunkTokens, dtype, threads };

    if (typeof flags["dump-logits"] === "string") dump = await LogitsDump.create(flags["dump-logits"]);
    const t0 = performance.now();
    const { nllSum, scored } = await score(source, tokens, plan, dump, engines);
    const seconds = (performance.now() - t0) / 1000;
    await dump?.finish();
    dump = null;

    const nll = nllSum / scored;
    const ppl = Math.exp(nll);
    if (flags.json) {
      process.stdout.write(JSON.stringify({ tokens: tokens.length, nll, ppl }) + "\n");
      return;
    }
    const steps = tokens.length - prefillTokens;
    const how =
      steps === 0
        ? `prefill on ${plan.prefillKind}`
        : prefillTokens === 0
          ? `${steps} steps on ${plan.decodeKind}`
          : `prefill ${prefillTokens} tokens on ${plan.prefillKind}, then ${steps} steps on ${plan.decodeKind}`;
    process.stdout.write(
      [
        `model       ${dir}`,
        `tokens      ${tokens.length} (${scored} scored)`,
        `nll         ${nll.toFixed(6)} nats/token`,
        `perplexity  ${ppl.toFixed(4)}`,
        `ran         ${how} (${dtype}), ${seconds.toFixed(2)} s`,
      ].join("\n") + "\n",
    );
  } finally {
    await dump?.abandon();
    for (const e of engines.values()) await e.dispose();
    await source.close();
  }
}
