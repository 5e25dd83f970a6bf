import { Tiktoken } from "js-tiktoken/lite";
import { MetalaError } from "../errors.js";
import { checkIds, tokenContent, type JsonObject } from "./config-fields.js";
import { byteDecodeStream } from "./decode-stream.js";
import { CL100K_PATTERN, checkedJsPattern } from "./tiktoken-pattern.js";
import type { DecodeOptions, EncodeOptions, Tokenizer } from "./tokenizer.js";

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function base64Bytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

/** Reads a .tiktoken vocabulary: one `<base64 bytes> <rank>` per line. */
function parseRanks(text: string, file: string): { b64ByRank: Map<number, string>; bytesByRank: Map<number, Uint8Array> } {
  const b64ByRank = new Map<number, string>();
  const bytesByRank = new Map<number, Uint8Array>();
  const seen = new Set<string>(); // base64 spellings: one per byte string, as the file is written by base64-encoding
  const singleBytes = new Uint8Array(256);
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].trim();
    if (line === "") continue;
    const parts = line.split(/\s+/);
    const rank = Number(parts[1]);
    if (parts.length !== 2 || !BASE64.test(parts[0]) || !/^\d+$/.test(parts[1]) || !Number.isSafeInteger(rank))
      throw new MetalaError("format", `${file} line ${n + 1}: expected "<base64 token> <rank>", got ${JSON.stringify(line.slice(0, 60))}`);
    if (b64ByRank.has(rank)) throw new MetalaError("format", `${file} line ${n + 1}: rank ${rank} appears twice`);
    if (seen.has(parts[0])) throw new MetalaError("format", `${file} line ${n + 1}: token ${parts[0]} appears twice`);
    seen.add(parts[0]);
    const bytes = base64Bytes(parts[0]);
    if (bytes.length === 1) singleBytes[bytes[0]] = 1;
    b64ByRank.set(rank, parts[0]);
    bytesByRank.set(rank, bytes);
  }
  if (b64ByRank.size === 0) throw new MetalaError("format", `${file}: no tokens`);
  // Byte-level BPE can encode any text only if every single byte is a token (tiktoken's own invariant).
  for (let b = 0; b < 256; b++)
    if (!singleBytes[b])
      throw new MetalaError("format", `${file}: byte 0x${b.toString(16).padStart(2, "0")} has no token, so not every text can be encoded`);
  return { b64ByRank, bytesByRank };
}

/** js-tiktoken's vocabulary layout: lines of `! <first rank> <base64> <base64> ...` over runs of consecutive ranks. */
function jsTiktokenRanks(b64ByRank: Map<number, string>): string {
  const ranks = [...b64ByRank.keys()].sort((a, b) => a - b);
  const lines: string[] = [];
  let run: string[] = [];
  let start = 0;
  for (let i = 0; i < ranks.length; i++) {
    if (i > 0 && ranks[i] !== ranks[i - 1] + 1) {
      lines.push(`! ${start} ${run.join(" ")}`);
      run = [];
    }
    if (run.length === 0) start = ranks[i];
    run.push(b64ByRank.get(ranks[i])!);
  }
  lines.push(`! ${start} ${run.join(" ")}`);
  return lines.join("\n");
}

/**
 * Special tokens a tokenizer_config.json gives for a tiktoken vocabulary:
 * `special_tokens` {text: id}, and Hugging Face's `added_tokens_decoder`
 * {"id": {content}} (what save_pretrained writes for a tiktoken-based tokenizer).
 */
function configSpecialTokens(config: JsonObject, file: string): Map<string, number> {
  const specials = new Map<string, number>();
  const add = (content: unknown, id: unknown) => {
    if (typeof content !== "string" || content === "" || typeof id !== "number" || !Number.isInteger(id) || id < 0)
      throw new MetalaError("format", `${file}: special token ${JSON.stringify(content)} needs a non-negative integer id, got ${JSON.stringify(id)}`);
    specials.set(content, id);
  };
  const st = config.special_tokens;
  if (st !== undefined) {
    if (typeof st !== "object" || st === null || Array.isArray(st))
      throw new MetalaError("format", `${file}: "special_tokens" must be an object {token: id}`);
    for (const [content, id] of Object.entries(st)) add(content, id);
  }
  const atd = config.added_tokens_decoder;
  if (atd !== undefined) {
    if (typeof atd !== "object" || atd === null || Array.isArray(atd))
      throw new MetalaError("format", `${file}: "added_tokens_decoder" must be an object {id: {content}}`);
    for (const [id, token] of Object.entries(atd)) add(tokenContent(token), /^\d+$/.test(id) ? Number(id) : id);
  }
  return specials;
}

/**
 * A tiktoken vocabulary run by js-tiktoken, with the regex pattern and
 * special tokens from tokenizer_config.json (`pat_str`, `special_tokens` or
 * `added_tokens_decoder`, `bos_token`/`eos_token`, `add_bos_token`/
 * `add_eos_token`). Without a pattern, cl100k's is used and a note says so.
 */
export function createTiktokenTokenizer(vocabText: string, vocabFile: string, config: JsonObject, configFile: string): Tokenizer {
  const { b64ByRank, bytesByRank } = parseRanks(vocabText, vocabFile);
  const notes: string[] = [];

  const pat = config.pat_str ?? config.pattern;
  if (pat !== undefined && typeof pat !== "string") throw new MetalaError("format", `${configFile}: "pat_str" must be a string`);
  if (pat === undefined) notes.push(`${vocabFile}: no regex pattern given ("pat_str" in tokenizer_config.json): using cl100k's`);
  const pattern = pat === undefined ? CL100K_PATTERN : checkedJsPattern(pat, `${configFile} pat_str`);

  const specialTokens = configSpecialTokens(config, configFile);
  const specialBytes = new Map<number, Uint8Array>();
  const utf8 = new TextEncoder();
  for (const [content, id] of specialTokens) {
    const ordinary = bytesByRank.get(id);
    if (ordinary !== undefined)
      throw new MetalaError("format", `${configFile}: special token ${JSON.stringify(content)} has id ${id}, which ${vocabFile} already gives to another token`);
    specialBytes.set(id, utf8.encode(content));
  }
  if (specialTokens.size === 0)
    notes.push(`${vocabFile}: no special tokens given ("special_tokens" or "added_tokens_decoder" in tokenizer_config.json)`);

  let vocabSize = 0;
  for (const id of bytesByRank.keys()) vocabSize = Math.max(vocabSize, id + 1);
  for (const id of specialTokens.values()) vocabSize = Math.max(vocabSize, id + 1);

  const idOf = (field: string): number | null => {
    const content = tokenContent(config[field]);
    if (content === undefined) return null;
    const id = specialTokens.get(content);
    if (id === undefined) notes.push(`${configFile} names ${field} ${JSON.stringify(content)}, which is not one of its special tokens`);
    return id ?? null;
  };
  const bosTokenId = idOf("bos_token");
  const eosTokenId = idOf("eos_token");
  const addBos = config.add_bos_token === true && bosTokenId !== null;
  const addEos = config.add_eos_token === true && eosTokenId !== null;

  const encoder = new Tiktoken({ pat_str: pattern, special_tokens: Object.fromEntries(specialTokens), bpe_ranks: jsTiktokenRanks(b64ByRank) });
  const known = (id: number) => bytesByRank.has(id) || specialBytes.has(id);
  const bytesFor = (skipSpecial: boolean) => (id: number) => bytesByRank.get(id) ?? (skipSpecial ? null : specialBytes.get(id)!);

  return {
    kind: "tiktoken",
    vocabSize,
    bosTokenId,
    eosTokenId,
    specialTokens,
    notes,
    encode(text: string, options: EncodeOptions = {}): number[] {
      // special tokens written in the text are read as such, as Hugging Face tokenizers do
      const ids = encoder.encode(text, "all");
      if (options.addSpecialTokens ?? true) {
        if (addBos) ids.unshift(bosTokenId!);
        if (addEos) ids.push(eosTokenId!);
      }
      return ids;
    },
    decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
      const stream = byteDecodeStream(bytesFor(options.skipSpecialTokens ?? false));
      let text = "";
      for (const id of checkIds(ids, vocabSize, known)) text += stream.push(id);
      return text + stream.flush();
    },
    createDecodeStream(options: DecodeOptions = {}) {
      const inner = byteDecodeStream(bytesFor(options.skipSpecialTokens ?? false));
      return {
        push: (id: number) => inner.push(checkIds([id], vocabSize, known)[0]),
        flush: () => inner.flush(),
      };
    },
  };
}
