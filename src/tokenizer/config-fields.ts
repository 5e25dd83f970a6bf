import { MetalaError } from "../errors.js";

export type JsonObject = Record<string, unknown>;

/** Parses one tokenizer file that must hold a JSON object. */
export function parseJsonObject(text: string, file: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new MetalaError("format", `${file}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new MetalaError("format", `${file}: expected a JSON object`);
  return value as JsonObject;
}

/** A special-token field of tokenizer_config.json: a string, or an AddedToken object {content: ...}. */
export function tokenContent(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "object" && value !== null && typeof (value as JsonObject).content === "string")
    return (value as JsonObject).content as string;
  return undefined;
}

/**
 * tokenizer_config.json with the fields of special_tokens_map.json filled in
 * where the config lacks them (older checkpoints keep bos/eos only there).
 */
export function mergedTokenizerConfig(config: JsonObject | undefined, specialTokensMap: JsonObject | undefined): JsonObject {
  return { ...(specialTokensMap ?? {}), ...(config ?? {}) };
}

export function checkIds(ids: ArrayLike<number>, vocabSize: number, known: (id: number) => boolean): number[] {
  const out = new Array<number>(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize || !known(id))
      throw new MetalaError("input", `token id ${id} is not in the tokenizer's vocabulary (0..${vocabSize - 1})`);
    out[i] = id;
  }
  return out;
}
