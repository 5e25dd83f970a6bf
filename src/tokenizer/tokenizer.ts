/**
 * One interface over the two tokenizer formats MetaLA checkpoints come with
 * (metala-model.md §5): Hugging Face `tokenizer.json` and tiktoken
 * vocabularies. Nothing here touches the file system, so a browser can build
 * a tokenizer from fetched file contents.
 */

export type TokenizerKind = "huggingface" | "tiktoken";

/**
 * The tokenizer files of a model folder, by file name (no directory), as
 * text. Only the names loadTokenizer looks for need to be present:
 * tokenizer.json, tokenizer_config.json, special_tokens_map.json, *.tiktoken.
 */
export type TokenizerFiles = Readonly<Record<string, string>>;

export interface EncodeOptions {
  /**
   * Add the special tokens the tokenizer's own configuration adds around a
   * text (a BOS token, usually), as Hugging Face's tokenizer(text) does by
   * default. Default true, so that ids match what the model was trained on.
   */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Leave special tokens (BOS, EOS, chat markers) out of the text. Default false. */
  skipSpecialTokens?: boolean;
}

/**
 * Turns ids arriving one at a time into text pieces. A piece never ends in
 * the middle of a UTF-8 character: ids that hold only part of one are kept
 * until the rest arrives (push returns "" meanwhile).
 */
export interface DecodeStream {
  push(id: number): string;
  /** The text still held back (an incomplete character at the very end decodes to U+FFFD). */
  flush(): string;
}

export interface Tokenizer {
  readonly kind: TokenizerKind;
  /** Highest id the tokenizer can produce or decode, plus one (special tokens included). */
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  /** Special tokens by their text. */
  readonly specialTokens: ReadonlyMap<string, number>;
  /** Assumptions the loader had to make (e.g. a default regex pattern), for `info` and warnings. */
  readonly notes: readonly string[];
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  createDecodeStream(options?: DecodeOptions): DecodeStream;
}
