import type { Engine } from "../engine.js";
import { MetalaError } from "../errors.js";
import type { MqarSet } from "./generate.js";

export interface MqarScore {
  correct: number;
  total: number;
  accuracy: number;
  /** Correct queries per example, in set order (to locate a disagreement with PyTorch). */
  perExample: number[];
}

/** Index of the largest logit; the first one on a tie, as torch.argmax does. */
export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/**
 * Runs every example of the set through the engine (one parallel prefill per
 * example, from the empty state) and counts the queried positions whose
 * argmax is the value paired with the key: Zoology's accuracy.
 */
export async function scoreMqar(engine: Engine, set: MqarSet, onExample?: (done: number, score: MqarScore) => void): Promise<MqarScore> {
  if (engine.config.vocabSize < set.task.vocabSize)
    throw new MetalaError(
      "input",
      `mqar: the model's vocabulary (${engine.config.vocabSize}) is smaller than the task's (${set.task.vocabSize})`,
    );
  const score: MqarScore = { correct: 0, total: 0, accuracy: 0, perExample: [] };
  const session = engine.createSession();
  try {
    for (const ex of set.examples) {
      session.reset();
      const logits = await session.prefill(ex.inputs, "all");
      let right = 0;
      for (const q of ex.queries) if (argmax(logits[q.position]) === q.value) right++;
      score.correct += right;
      score.total += ex.queries.length;
      score.perExample.push(right);
      score.accuracy = score.correct / score.total;
      onExample?.(score.perExample.length, score);
    }
  } finally {
    session.dispose();
  }
  return score;
}
