// Seeded mutation fuzzing of the parsers that read untrusted input: the
// safetensors header (and the tensor reads it allows), config.json through
// parseConfig, and the sharded index. Every input must either be accepted
// with its invariants intact or be refused with a one-line MetalaError;
// nothing else (TypeError, RangeError, a stack overflow) may escape.
// A failure prints the seed and the input so it can be replayed.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { MetalaError } from "../dist/errors.js";
import { parseJsonText } from "../dist/io/json-file.js";
import { MemorySource } from "../dist/io/memory-source.js";
import { readTensorF32 } from "../dist/io/read-tensor.js";
import { parseWeightMap } from "../dist/io/safetensors-index.js";
import { readSafetensors } from "../dist/io/safetensors.js";
import { GLU_ACTIVATIONS, parseConfig } from "../dist/model/config.js";
import { seededRandom } from "./helpers/random-model.mjs";
import { encodeSafetensors, f32Bytes, u16Bytes } from "./helpers/safetensors-writer.mjs";

const SEED = Number(process.env.FUZZ_SEED ?? 20241110);
const ROUNDS = Number(process.env.FUZZ_ROUNDS ?? 1);

// JSON.stringify overflows the stack on this; JSON.parse does not, so a header or config may hold it.
const DEEP_TEXT = "[".repeat(50_000) + "]".repeat(50_000);
const DEEP = JSON.parse(DEEP_TEXT);
const INTERESTING = [
  -1, 0, 1, 2, 3, 4, 7, 8, 16, 1.5, -0.5, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e308, -1e308,
  "", "F32", "F16", "BF16", "I64", "F4", "x", "1", "-1", "simplermsnorm", "layernorm", "silu", "metala",
  null, true, false, [], [0], [1, 2], [2, 2], [-1, 4], [0, 1e20], [0, 16], [16, 0], [4, 8], [[1]], {}, { a: 1 }, { dtype: "F32" },
  "x".repeat(100_000), DEEP,
];

function pick(rand, list) {
  return list[Math.floor(rand() * list.length)];
}

function describe(input) {
  const s = typeof input === "string" ? input : input instanceof Uint8Array ? Buffer.from(input).toString("latin1") : safeStringify(input);
  return JSON.stringify(s.length > 300 ? s.slice(0, 300) + "..." : s);
}

function safeStringify(v) {
  try {
    return JSON.stringify(v);
  } catch {
    return `<${typeof v}>`;
  }
}

/** Each failure must be a one-line MetalaError of an allowed kind, naming the source. */
function checkRefusal(e, kinds, label, where) {
  if (!(e instanceof MetalaError)) assert.unreachable(`${where}: escaped ${e?.stack ?? e}`);
  if (!kinds.includes(e.kind)) assert.unreachable(`${where}: kind ${e.kind}: ${e.message}`);
  if (!e.message.startsWith(label)) assert.unreachable(`${where}: message does not name ${label}: ${e.message}`);
  if (e.message.includes("\n") || e.message.length > 1000) assert.unreachable(`${where}: not one short line: ${e.message.slice(0, 300)}`);
}

// --- safetensors -----------------------------------------------------------

const BASE_FILES = [
  encodeSafetensors([
    { name: "w", dtype: "F32", shape: [2, 3], data: f32Bytes([1, 2, 3, 4, 5, 6]) },
    { name: "h", dtype: "F16", shape: [3], data: u16Bytes([0x3c00, 0x7c00, 0x0001]) },
    { name: "b", dtype: "BF16", shape: [1, 2], data: u16Bytes([0x3f80, 0xff80]) },
  ], { metadata: { format: "pt" } }),
  encodeSafetensors([
    { name: "z", dtype: "F32", shape: [0], data: new Uint8Array(0) },
    { name: "i", dtype: "I64", shape: [1], data: new Uint8Array(8) },
    { name: "model.layers.0.token_mixer.conv1d.weight", dtype: "BF16", shape: [2, 1, 4], data: u16Bytes([1, 2, 3, 4, 5, 6, 7, 8]) },
  ]),
  encodeSafetensors([{ name: "s", dtype: "F32", shape: [], data: f32Bytes([3]) }], { pad: false }),
];

const JSON_CHARS = '{}[]",:-.0123456789eE \\u'.split("").map((c) => c.charCodeAt(0));

function headerEnd(file) {
  return 8 + Number(new DataView(file.buffer, file.byteOffset, 8).getBigUint64(0, true));
}

/** Byte-level damage anywhere in the length field or header, or the file's length. */
function mutateBytes(rand, base) {
  const out = base.slice();
  const end = Math.min(headerEnd(base), out.length);
  const times = 1 + Math.floor(rand() * 4);
  let result = out;
  for (let k = 0; k < times; k++) {
    const at = Math.floor(rand() * end);
    switch (Math.floor(rand() * 6)) {
      case 0:
        result[at] ^= 1 << Math.floor(rand() * 8);
        break;
      case 1:
        result[at] = pick(rand, JSON_CHARS);
        break;
      case 2:
        result[at] = Math.floor(rand() * 256);
        break;
      case 3:
        result = result.subarray(0, Math.floor(rand() * result.length));
        break;
      case 4: {
        // Length field: small deltas, huge values, zero.
        const dv = new DataView(result.buffer, result.byteOffset, 8);
        const v = dv.getBigUint64(0, true);
        dv.setBigUint64(0, pick(rand, [v + 1n, v - 1n, v + 8n, 0n, 2n ** 63n, 100_000_001n, BigInt(result.length)]) & (2n ** 64n - 1n), true);
        break;
      }
      default: {
        // Append garbage or cut data: the data section no longer matches the offsets.
        const extra = new Uint8Array(Math.floor(rand() * 9));
        const grown = new Uint8Array(result.length + extra.length);
        grown.set(result);
        result = rand() < 0.5 ? grown : result.subarray(0, Math.max(0, result.length - 1 - Math.floor(rand() * 8)));
      }
    }
  }
  return result;
}

/** Structure-aware damage: replace, delete or add something in the parsed header, then re-encode with a correct length. */
function mutateHeader(rand, base) {
  const n = headerEnd(base);
  const header = JSON.parse(new TextDecoder().decode(base.subarray(8, n)));
  const data = base.subarray(n);
  const names = Object.keys(header);
  const name = pick(rand, [...names, "new"]);
  const entry = header[name];
  const op = Math.floor(rand() * 5);
  if (op === 0 || typeof entry !== "object" || entry === null) header[name] = pick(rand, INTERESTING);
  else if (op === 1) delete entry[pick(rand, ["dtype", "shape", "data_offsets"])];
  else if (op === 2) entry[pick(rand, ["dtype", "shape", "data_offsets", "extra"])] = pick(rand, INTERESTING);
  else if (op === 3 && Array.isArray(entry.shape)) entry.shape[Math.floor(rand() * (entry.shape.length + 1))] = pick(rand, INTERESTING);
  else if (Array.isArray(entry.data_offsets)) entry.data_offsets[Math.floor(rand() * 2)] = pick(rand, [0, 1, 2, 8, 12, 16, 24, 31, 32, -4, 1e9, 2 ** 60]);
  const text = JSON.stringify(header, (k, v) => (v === DEEP ? "__DEEP__" : v)).replace('"__DEEP__"', DEEP_TEXT);
  const headerBytes = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + headerBytes.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  out.set(data, 8 + headerBytes.length);
  return out;
}

async function checkSafetensors(bytes, where) {
  const label = "fuzz.safetensors";
  let file;
  try {
    file = await readSafetensors(new MemorySource(bytes, label));
  } catch (e) {
    checkRefusal(e, ["format"], label, where);
    return "refused";
  }
  // Accepted: every range must lie in the file, and every weight must read.
  for (const t of file.tensors.values()) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.begin < 8 || t.begin + t.byteLength > bytes.length) assert.unreachable(`${where}: ${t.name} outside the file`);
    try {
      await readTensorF32(file.source, t, new Float32Array(count), 4);
      if (!["F32", "F16", "BF16"].includes(t.dtype)) assert.unreachable(`${where}: read ${t.dtype} as a weight`);
    } catch (e) {
      checkRefusal(e, ["weights"], label, `${where} reading ${t.name}`);
    }
  }
  return "accepted";
}

test("safetensors header: byte-level and structure-aware mutations never escape as anything but MetalaError", async () => {
  const counts = { accepted: 0, refused: 0 };
  for (let round = 0; round < ROUNDS; round++) {
    const rand = seededRandom(SEED + round);
    for (let i = 0; i < 6000; i++) {
      const base = pick(rand, BASE_FILES);
      const structural = rand() < 0.5;
      const bytes = structural ? mutateHeader(rand, base) : mutateBytes(rand, base);
      counts[await checkSafetensors(bytes, `seed ${SEED + round} #${i} ${describe(bytes)}`)]++;
    }
  }
  // Both outcomes must occur, or the mutations are not exploring anything.
  assert.ok(counts.accepted > 100 && counts.refused > 1000, JSON.stringify(counts));
});

// --- config.json -------------------------------------------------------------

const CONFIG_KEYS = [
  "model_type", "decoder_embed_dim", "decoder_layers", "decoder_attention_heads", "glu_dim", "vocab_size", "glu_act", "bias", "norm_type",
  "no_scale_embedding", "tie_word_embeddings", "pad_token_id", "bos_token_id", "eos_token_id", "hidden_size", "num_hidden_layers",
  "num_attention_heads", "intermediate_size", "hidden_act",
];
const BASE_CONFIG = {
  model_type: "metala",
  decoder_embed_dim: 64,
  decoder_layers: 2,
  decoder_attention_heads: 2,
  glu_dim: 96,
  vocab_size: 256,
  glu_act: "silu",
  bias: false,
  norm_type: "simplermsnorm",
  no_scale_embedding: true,
  eos_token_id: 2,
};
const CONFIG_VALUES = [...INTERESTING, -1, 6, 12, 32, 48, 64, 96, 128, ...GLU_ACTIVATIONS, [2, 3], [null]];

function checkConfig(raw, where) {
  const label = "fuzz/config.json";
  let c;
  try {
    c = parseConfig(typeof raw === "string" ? parseJsonText(raw, label) : raw, label);
  } catch (e) {
    checkRefusal(e, ["config", "format"], label, where);
    return "refused";
  }
  const positiveInts = [c.hiddenSize, c.numLayers, c.numHeads, c.gluDim, c.vocabSize, c.keyDim, c.headKeyDim, c.headValueDim];
  if (!positiveInts.every((v) => Number.isSafeInteger(v) && v > 0)) assert.unreachable(`${where}: sizes ${positiveInts}`);
  if (c.keyDim * 2 !== c.hiddenSize || c.headKeyDim * c.numHeads !== c.keyDim || c.headValueDim * c.numHeads !== c.hiddenSize)
    assert.unreachable(`${where}: inconsistent derived sizes`);
  if (!GLU_ACTIVATIONS.includes(c.gluAct) || !["simplermsnorm", "layernorm"].includes(c.normType)) assert.unreachable(`${where}: act/norm`);
  for (const id of [c.padTokenId, c.bosTokenId, c.eosTokenId])
    if (id !== null && !(Number.isSafeInteger(id) && id >= 0)) assert.unreachable(`${where}: token id ${id}`);
  return "accepted";
}

test("parseConfig: mutated objects and mutated JSON text never escape as anything but MetalaError", () => {
  const counts = { accepted: 0, refused: 0 };
  const baseText = JSON.stringify(BASE_CONFIG, null, 1);
  for (let round = 0; round < ROUNDS; round++) {
    const rand = seededRandom(SEED * 3 + round);
    for (let i = 0; i < 8000; i++) {
      let input;
      if (rand() < 0.6) {
        input = structuredClone(BASE_CONFIG);
        const edits = 1 + Math.floor(rand() * 3);
        for (let k = 0; k < edits; k++) {
          const key = pick(rand, CONFIG_KEYS);
          if (rand() < 0.2) delete input[key];
          else input[key] = pick(rand, CONFIG_VALUES);
        }
        if (rand() < 0.02) input = pick(rand, INTERESTING);
      } else {
        const chars = baseText.split("");
        const edits = 1 + Math.floor(rand() * 3);
        for (let k = 0; k < edits; k++) {
          const at = Math.floor(rand() * chars.length);
          const op = rand();
          if (op < 0.4) chars[at] = String.fromCharCode(pick(rand, JSON_CHARS));
          else if (op < 0.7) chars.splice(at, 1);
          else chars.splice(at, 0, pick(rand, ["-", "1", "9", "0", "e400", "\"", "}", "[", "null", "1.5", "\ufeff"]));
        }
        input = chars.join("");
      }
      counts[checkConfig(input, `seed ${SEED * 3 + round} #${i} ${describe(input)}`)]++;
    }
  }
  assert.ok(counts.accepted > 500 && counts.refused > 1000, JSON.stringify(counts));
});

// --- model.safetensors.index.json ---------------------------------------------

test("parseWeightMap: mutated indexes are accepted as plain file names or refused with MetalaError", () => {
  const rand = seededRandom(SEED * 7);
  const label = "fuzz/model.safetensors.index.json";
  for (let i = 0; i < 4000; i++) {
    const index = { metadata: { total_size: 10 }, weight_map: { "a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors" } };
    const target = rand() < 0.7 ? index.weight_map : index;
    target[pick(rand, ["a.weight", "b.weight", "weight_map", "x"])] = pick(rand, [...INTERESTING, "../x", "/etc/passwd", "a\\b", "C:x", ".", "..", "ok.safetensors"]);
    const input = rand() < 0.05 ? pick(rand, INTERESTING) : index;
    let map;
    try {
      map = parseWeightMap(input, label);
    } catch (e) {
      checkRefusal(e, ["format"], label, `#${i} ${describe(input)}`);
      continue;
    }
    for (const file of map.values())
      if (typeof file !== "string" || /[/\\]/.test(file) || file === ".." || file === "." || file === "") assert.unreachable(`#${i}: accepted shard ${file}`);
  }
});

test.run();
