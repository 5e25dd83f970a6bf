import { MetalaError } from "../errors.js";
import { mergedTokenizerConfig, parseJsonObject, type JsonObject } from "./config-fields.js";
import { createHuggingFaceTokenizer } from "./huggingface.js";
import { createTiktokenTokenizer } from "./tiktoken.js";
import type { Tokenizer, TokenizerFiles } from "./tokenizer.js";

/**
 * The file names loadTokenizer reads. A host that can list a folder passes
 * these and every *.tiktoken; one that cannot (HTTP) fetches these, which
 * include the vocabulary name of the released MetaLA checkpoints.
 */
export const TOKENIZER_FILE_NAMES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "transnormer_100k.tiktoken"] as const;

export function isTokenizerFileName(name: string): boolean {
  return (TOKENIZER_FILE_NAMES as readonly string[]).includes(name) || name.endsWith(".tiktoken");
}

/**
 * Builds the tokenizer of a model folder from its files' contents: a
 * tokenizer.json if there is one, else the folder's single *.tiktoken
 * vocabulary. `source` names the folder in errors.
 */
export function loadTokenizer(files: TokenizerFiles, source: string): Tokenizer {
  const path = (name: string) => `${source}/${name}`;
  const json = (name: string): JsonObject | undefined =>
    files[name] === undefined ? undefined : parseJsonObject(files[name], path(name));
  const config = mergedTokenizerConfig(json("tokenizer_config.json"), json("special_tokens_map.json"));

  const tokenizerJson = json("tokenizer.json");
  if (tokenizerJson !== undefined) return createHuggingFaceTokenizer(tokenizerJson, config, path("tokenizer.json"));

  const vocabs = Object.keys(files).filter((n) => n.endsWith(".tiktoken")).sort();
  if (vocabs.length > 1) {
    // a config may name its vocabulary (Hugging Face's vocab_file convention)
    const named = typeof config.vocab_file === "string" ? vocabs.find((v) => v === config.vocab_file) : undefined;
    if (named === undefined)
      throw new MetalaError("format", `${source}: several tiktoken vocabularies (${vocabs.join(", ")}) and no "vocab_file" in tokenizer_config.json to pick one`);
    vocabs.splice(0, vocabs.length, named);
  }
  if (vocabs.length === 1) return createTiktokenTokenizer(files[vocabs[0]], path(vocabs[0]), config, path("tokenizer_config.json"));

  throw new MetalaError("io", `${source}: no tokenizer (looked for tokenizer.json and *.tiktoken)`);
}
