import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { MetalaError } from "../errors.js";
import { checkIds, tokenContent, type JsonObject } from "./config-fields.js";
import { textDiffDecodeStream } from "./decode-stream.js";
import type { DecodeOptions, EncodeOptions, Tokenizer } from "./tokenizer.js";

/**
 * A Hugging Face tokenizer.json (+ tokenizer_config.json), run by
 * @huggingface/tokenizers, the JS port that transformers.js uses.
 */
export function createHuggingFaceTokenizer(tokenizerJson: JsonObject, config: JsonObject, file: string): Tokenizer {
  if (typeof tokenizerJson.model !== "object" || tokenizerJson.model === null)
    throw new MetalaError("format", `${file}: no "model" section; not a tokenizer.json`);
  let hf: HfTokenizer;
  try {
    // the library reads these lists without checking that they exist
    hf = new HfTokenizer({ added_tokens: [], ...tokenizerJson }, config);
  } catch (e) {
    throw new MetalaError("format", `${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }

  let vocabSize = 0;
  for (const id of hf.get_vocab(true).values()) vocabSize = Math.max(vocabSize, id + 1);
  const specialTokens = new Map<string, number>();
  for (const [id, token] of hf.get_added_tokens_decoder()) if (token.special) specialTokens.set(token.content, id);

  const notes: string[] = [];
  const idOf = (field: string): number | null => {
    const content = tokenContent(config[field]);
    if (content === undefined) return null;
    const id = hf.token_to_id(content);
    if (id === undefined) {
      notes.push(`tokenizer_config.json names ${field} ${JSON.stringify(content)}, which is not in the vocabulary`);
      return null;
    }
    return id;
  };
  const bosTokenId = idOf("bos_token");
  const eosTokenId = idOf("eos_token");

  const known = (id: number) => hf.id_to_token(id) !== undefined;
  const decode = (ids: ArrayLike<number>, options: DecodeOptions = {}): string => {
    const checked = checkIds(ids, vocabSize, known);
    if (checked.length === 0) return "";
    return hf.decode(checked, { skip_special_tokens: options.skipSpecialTokens ?? false });
  };

  return {
    kind: "huggingface",
    vocabSize,
    bosTokenId,
    eosTokenId,
    specialTokens,
    notes,
    encode(text: string, options: EncodeOptions = {}): number[] {
      const ids = hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
      // a model without an unknown token maps characters it cannot encode to undefined
      if (ids.some((id: unknown) => typeof id !== "number"))
        throw new MetalaError("input", "the text holds characters this tokenizer cannot encode (it has no unknown token)");
      return ids;
    },
    decode,
    createDecodeStream(options: DecodeOptions = {}) {
      return textDiffDecodeStream((ids) => decode(ids, options));
    },
  };
}
