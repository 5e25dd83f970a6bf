import type { DecodeStream } from "./tokenizer.js";

/**
 * Streaming for tokenizers that only offer "ids -> text": decode a small
 * window that starts a few ids back (so that context-dependent decoders, e.g.
 * sentencepiece's leading-space rule, see the same neighbours as in a full
 * decode) and emit what the new id added, unless the text ends in U+FFFD,
 * the mark of a character whose bytes have not all arrived.
 */
export function textDiffDecodeStream(decode: (ids: number[]) => string): DecodeStream {
  let ids: number[] = [];
  let readIndex = 0; // ids before this index have been emitted
  let prefixText = ""; // decode(ids[0..readIndex])

  const advance = (text: string): string => {
    const piece = text.slice(prefixText.length);
    // keep the ids just emitted as the context for the next piece
    ids = ids.slice(readIndex);
    readIndex = ids.length;
    prefixText = decode(ids);
    return piece;
  };

  return {
    push(id: number): string {
      ids.push(id);
      const text = decode(ids);
      if (text.length > prefixText.length && !text.endsWith("\uFFFD")) return advance(text);
      return "";
    },
    flush(): string {
      if (ids.length === readIndex) return "";
      const text = decode(ids);
      return text.length > prefixText.length ? advance(text) : "";
    },
  };
}

/**
 * Streaming for tokenizers whose tokens are byte strings (tiktoken): feed
 * each token's bytes through a streaming UTF-8 decoder, which holds back an
 * incomplete character by itself. Exact, and a U+FFFD in the text itself
 * does not stall the stream.
 */
export function byteDecodeStream(bytesOf: (id: number) => Uint8Array | null): DecodeStream {
  const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
  return {
    push(id: number): string {
      const bytes = bytesOf(id);
      return bytes === null ? "" : utf8.decode(bytes, { stream: true });
    },
    flush(): string {
      return utf8.decode();
    },
  };
}
