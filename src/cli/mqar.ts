import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { MetalaError } from "../errors.js";
import { parseJsonText } from "../io/json-file.js";
import { generateMqar, type MqarTask } from "../mqar/generate.js";
import { scoreMqar } from "../mqar/score.js";
import { digestMqarSet, mqarSetToJson, taskFromJson } from "../mqar/set-file.js";
import { choiceFlag, intFlag, numberFlag, parseFlags } from "./args.js";
import { createEngine, DEVICES, DTYPES, openModel, resolveDevice, resolveModelDir } from "./common.js";

const USAGE = `metala mqar --model DIR [--seed S] [--examples N] [--device reference|wasm|webgpu|auto] [--dtype f32|q8|q4] [--json]
metala mqar --write-set FILE [--model DIR | --vocab V --seq-len L --pairs N] [--seed S] [--examples N]

Multi-query associative recall (Zoology): scores the model on a seeded test
set, or writes the set (JSON) for the PyTorch tools. The task settings come
from the model folder's reference.json unless given as flags.`;

const OPTIONS = {
  model: { type: "string" },
  seed: { type: "string" },
  examples: { type: "string" },
  device: { type: "string" },
  dtype: { type: "string" },
  threads: { type: "string" },
  json: { type: "boolean" },
  "write-set": { type: "string" },
  vocab: { type: "string" },
  "seq-len": { type: "string" },
  pairs: { type: "string" },
  "power-a": { type: "string" },
  help: { type: "boolean" },
} as const;

interface ModelReference {
  task: MqarTask;
  seed?: number;
  examples?: number;
  /** PyTorch's correct queries per example of the recorded set. */
  perExample?: number[];
}

async function readReference(dir: string): Promise<ModelReference> {
  const path = join(dir, "reference.json");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    throw new MetalaError("io", `${path}: cannot read it (an MQAR model folder records its task there)`);
  }
  const raw = parseJsonText(text, path) as Record<string, unknown>;
  const pytorch = (raw.pytorch ?? {}) as Record<string, unknown>;
  return {
    task: taskFromJson(raw.task, path),
    seed: typeof raw.seed === "number" ? raw.seed : undefined,
    examples: typeof pytorch.examples === "number" ? pytorch.examples : undefined,
    perExample: Array.isArray(pytorch.per_example) && pytorch.per_example.every((n) => typeof n === "number") ? (pytorch.per_example as number[]) : undefined,
  };
}

/** A task setting: the flag, else the model's recorded value; one of the two must exist. */
function taskFlag(value: unknown, flag: string, min: number, recorded: number | undefined): number {
  if (value === undefined && recorded === undefined) throw new MetalaError("usage", `mqar: --${flag} is required without --model`);
  return intFlag(value as string | undefined, flag, min, 1 << 24, recorded ?? 0);
}

export async function main(args: string[]): Promise<void> {
  const f = parseFlags(args, OPTIONS, "mqar");
  if (f.help) {
    console.log(USAGE);
    return;
  }
  const modelDir = f.model as string | undefined;
  const writeSet = f["write-set"] as string | undefined;
  if (modelDir === undefined && writeSet === undefined) throw new MetalaError("usage", "mqar: --model DIR is required (or --write-set FILE)");

  const ref = modelDir !== undefined ? await readReference(resolveModelDir(modelDir)) : undefined;
  const task: MqarTask = {
    vocabSize: taskFlag(f.vocab, "vocab", 4, ref?.task.vocabSize),
    seqLen: taskFlag(f["seq-len"], "seq-len", 4, ref?.task.seqLen),
    numPairs: taskFlag(f.pairs, "pairs", 1, ref?.task.numPairs),
    powerA: numberFlag(f["power-a"] as string | undefined, "power-a", 1e-9, 1, ref?.task.powerA ?? 0.01),
  };
  const seed = intFlag(f.seed as string | undefined, "seed", 0, 2 ** 32 - 1, ref?.seed ?? 0);
  const examples = intFlag(f.examples as string | undefined, "examples", 1, 1_000_000, ref?.examples ?? 100);
  const set = generateMqar(task, examples, seed);

  if (writeSet !== undefined) {
    try {
      await writeFile(writeSet, JSON.stringify(await mqarSetToJson(set)) + "\n");
    } catch (e) {
      throw new MetalaError("io", `${writeSet}: cannot write it (${(e as Error).message})`);
    }
    if (modelDir === undefined) return;
  }

  const device = choiceFlag(f.device as string | undefined, "device", DEVICES, "auto");
  const dtype = choiceFlag(f.dtype as string | undefined, "dtype", DTYPES, "f32");
  const threads = f.threads === undefined ? undefined : intFlag(f.threads as string, "threads", 1, 256, 1);
  const source = await openModel(resolveModelDir(modelDir));
  let engine;
  try {
    engine = await createEngine(await resolveDevice(device, "decode"), source, { dtype, threads });
  } catch (e) {
    await source.close();
    throw e;
  }
  try {
    const score = await scoreMqar(engine, set);
    // The examples are a prefix of the set PyTorch scored when seed and task are the recorded ones.
    const sameSet =
      ref?.perExample !== undefined &&
      seed === ref.seed &&
      examples <= ref.perExample.length &&
      JSON.stringify(task) === JSON.stringify(ref.task);
    const pytorchCorrect = sameSet ? ref!.perExample!.slice(0, examples).reduce((a, b) => a + b, 0) : undefined;
    const result = {
      model: modelDir,
      device: engine.kind,
      dtype,
      engine: engine.description,
      vocab_size: task.vocabSize,
      seq_len: task.seqLen,
      num_kv_pairs: task.numPairs,
      seed,
      examples,
      sha256: await digestMqarSet(set),
      correct: score.correct,
      total: score.total,
      accuracy: score.accuracy,
      pytorch_correct: pytorchCorrect ?? null,
    };
    if (f.json) console.log(JSON.stringify(result));
    else
      console.log(
        `MQAR ${task.numPairs} pairs, length ${task.seqLen}, vocab ${task.vocabSize}, seed ${seed}, ${examples} examples on ${engine.description}: ` +
          `${score.correct}/${score.total} = ${(100 * score.accuracy).toFixed(2)}%` +
          (pytorchCorrect === undefined ? "" : ` (PyTorch on the same examples: ${pytorchCorrect}/${score.total})`),
      );
  } finally {
    await engine.dispose();
    await source.close();
  }
}
