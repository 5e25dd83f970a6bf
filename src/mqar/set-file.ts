import { MetalaError } from "../errors.js";
import type { MqarSet, MqarTask } from "./generate.js";

/**
 * The file through which the PyTorch tools score exactly the examples the
 * runtime scores (tools/train/train_mqar.py reads it). Field names are
 * snake_case for the Python side.
 */
export const MQAR_SET_FORMAT = "metala-mqar-set/1";

export interface MqarSetJson {
  format: string;
  task: { vocab_size: number; seq_len: number; num_kv_pairs: number; power_a: number };
  seed: number;
  sha256: string;
  /** Per example: the input ids, and the queries as [position, value] pairs. */
  examples: { inputs: number[]; queries: [number, number][] }[];
}

/**
 * A digest of the examples (int32 little-endian: every example's inputs, then
 * its queries as position, value), so that a saved PyTorch figure can be
 * checked to belong to the set the generator produces today.
 */
export async function digestMqarSet(set: MqarSet): Promise<string> {
  let n = 0;
  for (const ex of set.examples) n += ex.inputs.length + 2 * ex.queries.length;
  const words = new Int32Array(n);
  let o = 0;
  for (const ex of set.examples) {
    words.set(ex.inputs, o);
    o += ex.inputs.length;
    for (const q of ex.queries) {
      words[o++] = q.position;
      words[o++] = q.value;
    }
  }
  const view = new DataView(words.buffer);
  for (let i = 0; i < n; i++) view.setInt32(4 * i, words[i], true); // little-endian on any host
  const hash = await globalThis.crypto.subtle.digest("SHA-256", words.buffer);
  return Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function taskToJson(t: MqarTask): MqarSetJson["task"] {
  return { vocab_size: t.vocabSize, seq_len: t.seqLen, num_kv_pairs: t.numPairs, power_a: t.powerA };
}

/** Reads the task settings a model folder's reference.json (or a set file) records. */
export function taskFromJson(raw: unknown, source: string): MqarTask {
  if (typeof raw !== "object" || raw === null) throw new MetalaError("format", `${source}: no "task" object, so this is not an MQAR model folder`);
  const t = raw as Record<string, unknown>;
  const num = (k: string): number => {
    const v = t[k];
    if (typeof v !== "number" || !Number.isFinite(v)) throw new MetalaError("format", `${source}: task.${k} must be a number`);
    return v;
  };
  return { vocabSize: num("vocab_size"), seqLen: num("seq_len"), numPairs: num("num_kv_pairs"), powerA: num("power_a") };
}

export async function mqarSetToJson(set: MqarSet): Promise<MqarSetJson> {
  return {
    format: MQAR_SET_FORMAT,
    task: taskToJson(set.task),
    seed: set.seed,
    sha256: await digestMqarSet(set),
    examples: set.examples.map((ex) => ({
      inputs: Array.from(ex.inputs),
      queries: ex.queries.map((q) => [q.position, q.value] as [number, number]),
    })),
  };
}
