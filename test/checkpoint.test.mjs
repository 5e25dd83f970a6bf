// Checkpoint folders (single file, sharded, every dtype), the URL and Blob
// paths, their failures, and the seeded random presets. Files come from the
// independent writer in test/helpers, which also holds its own copy of the
// official tensor names.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rejects } from "./helpers/rejects.mjs";
import { MetalaError } from "../dist/errors.js";
import { MemorySource } from "../dist/io/memory-source.js";
import { openCheckpoint, openCheckpointFromBlobs, openCheckpointFromSources, openCheckpointFromUrl } from "../dist/model/checkpoint.js";
import { PRESETS, presetSource } from "../dist/model/preset.js";
import { configJson, encodeSafetensors, f32Bytes, metalaTensors, serveFiles, testValues, writeCheckpoint } from "./helpers/safetensors-writer.mjs";

const TINY = { d: 8, layers: 2, heads: 2, glu: 12, vocab: 10 };
const RICH = { d: 12, layers: 1, heads: 3, glu: 10, vocab: 7, bias: true, layernorm: true, untied: true };

let root;
test.before(() => {
  root = mkdtempSync(join(tmpdir(), "metala-ckpt-"));
});
test.after(() => rmSync(root, { recursive: true, force: true }));
let folders = 0;
const folder = () => join(root, `m${folders++}`);


async function expectAllTensors(ckpt, expected) {
  for (const [name, values] of expected) {
    assert.ok(ckpt.has(name), name);
    assert.equal(Array.from(await ckpt.read(name)), Array.from(values), name);
  }
}

for (const dtype of ["F32", "BF16", "F16"])
  for (const shards of [1, 2])
    test(`${dtype} checkpoint, ${shards} file(s): every tensor reads back exactly, across small pieces`, async () => {
      const dir = folder();
      const expected = writeCheckpoint(dir, RICH, { dtype, shards });
      const ckpt = await openCheckpoint(dir, { pieceBytes: 6 });
      try {
        assert.is(ckpt.config.hiddenSize, 12);
        assert.is(ckpt.config.normType, "layernorm");
        assert.is(ckpt.tiedHead, false);
        assert.is(expected.size, metalaTensors(RICH).length);
        await expectAllTensors(ckpt, expected);
        const bytesPer = dtype === "F32" ? 4 : 2;
        const values = [...expected.values()].reduce((a, v) => a + v.length, 0);
        assert.is(ckpt.storedBytes, values * bytesPer);
        assert.is(ckpt.storedDType("model.layers.0.channel_mixer.l3.bias"), dtype);
      } finally {
        await ckpt.close();
      }
    });

test("tied head: lm_head.weight absent; the head reads as the embedding; dest is filled in place", async () => {
  const dir = folder();
  const expected = writeCheckpoint(dir, TINY);
  const ckpt = await openCheckpoint(dir + "/");
  try {
    assert.is(ckpt.tiedHead, true);
    assert.is(ckpt.has("lm_head.weight"), false);
    assert.equal(ckpt.shape("lm_head.weight"), [10, 8]);
    const embed = expected.get("model.embed_tokens.weight");
    const dest = new Float32Array(embed.length);
    const got = await ckpt.read("lm_head.weight", dest);
    assert.is(got, dest);
    assert.equal(Array.from(dest), Array.from(embed));
    await expectAllTensors(ckpt, expected);
    await rejects(() => ckpt.read("model.layers.7.token_mixer.q_proj.weight"), "weights", ["model.layers.7.token_mixer.q_proj.weight"]);
  } finally {
    await ckpt.close();
  }
});

test("tie_word_embeddings true wins over a present lm_head.weight (as the official code ties it)", async () => {
  const dir = folder();
  const expected = writeCheckpoint(dir, { ...TINY, untied: true }, { config: { tie_word_embeddings: true } });
  const ckpt = await openCheckpoint(dir);
  try {
    assert.is(ckpt.tiedHead, true);
    assert.equal(Array.from(await ckpt.read("lm_head.weight")), Array.from(expected.get("model.embed_tokens.weight")));
  } finally {
    await ckpt.close();
  }
});

test("reads are bounded: no source read larger than the piece size, whatever the tensor size", async () => {
  const c = { d: 64, layers: 1, heads: 2, glu: 96, vocab: 500 };
  for (const dtype of ["F32", "BF16"]) {
    const dir = folder();
    const expected = writeCheckpoint(dir, c, { dtype });
    const bytes = readFileSync(join(dir, "model.safetensors"));
    let largest = 0;
    const inner = new MemorySource(bytes, "counted.safetensors");
    const counted = {
      size: inner.size,
      label: inner.label,
      read: (o, n, into) => ((largest = Math.max(largest, n)), inner.read(o, n, into)),
      close: () => inner.close(),
    };
    const ckpt = await openCheckpointFromSources({ label: "mem", config: readFileSync(join(dir, "config.json"), "utf8"), files: { "model.safetensors": counted }, pieceBytes: 4096 });
    largest = 0;
    await expectAllTensors(ckpt, expected);
    assert.ok(largest <= 4096, `${dtype}: largest read ${largest}`);
    assert.ok(largest > 1000, `${dtype}: the embedding (${500 * 64} values) was read in pieces of up to 4096 bytes`);
  }
});

test("openCheckpointFromBlobs and openCheckpointFromUrl load a sharded folder", async () => {
  const dir = folder();
  const expected = writeCheckpoint(dir, RICH, { dtype: "BF16", shards: 2 });
  const names = ["config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
  const blobs = new Map(names.map((n) => [n, new Blob([readFileSync(join(dir, n))])]));
  const fromBlobs = await openCheckpointFromBlobs(blobs, "picked");
  await expectAllTensors(fromBlobs, expected);
  await fromBlobs.close();

  const server = await serveFiles(Object.fromEntries(names.map((n) => [`/repo/${n}`, readFileSync(join(dir, n))])));
  try {
    const fromUrl = await openCheckpointFromUrl(`${server.base}/repo/`);
    assert.is(fromUrl.label, `${server.base}/repo`);
    await expectAllTensors(fromUrl, expected);
    await fromUrl.close();
    await rejects(() => openCheckpointFromUrl(`${server.base}/elsewhere`), "io", ["elsewhere/config.json", "404"]);
  } finally {
    await server.close();
  }
});

test("a single-file folder over URL: the missing index (404) means model.safetensors", async () => {
  const dir = folder();
  const expected = writeCheckpoint(dir, TINY, { dtype: "F16" });
  const server = await serveFiles({
    "/m/config.json": readFileSync(join(dir, "config.json")),
    "/m/model.safetensors": readFileSync(join(dir, "model.safetensors")),
  });
  try {
    const ckpt = await openCheckpointFromUrl(`${server.base}/m`);
    await expectAllTensors(ckpt, expected);
  } finally {
    await server.close();
  }
});

const FAILURES = [
  ["a missing tensor", (d) => writeCheckpoint(d, TINY, { omit: "model.layers.1.token_mixer.aug_balance" }), "weights", ["model.safetensors", "model.layers.1.token_mixer.aug_balance", "missing", "[4]"]],
  ["a wrong shape", (d) => writeCheckpoint(d, TINY, { reshape: { "model.layers.0.token_mixer.v_proj.weight": [8, 4] } }), "weights", ["model.safetensors", "model.layers.0.token_mixer.v_proj.weight", "[8, 4]", "[8, 8]"]],
  ["conv weight stored flat", (d) => writeCheckpoint(d, TINY, { reshape: { "model.layers.0.token_mixer.conv1d.weight": [8, 4] } }), "weights", ["conv1d.weight", "[8, 1, 4]"]],
  ["an unsupported weight dtype", (d) => writeCheckpoint(d, TINY, { dtypeOf: { "model.layers.0.token_mixer.g_proj.bias": "I64" } }), "weights", ["model.safetensors", "g_proj.bias", "I64"]],
  ["untied config without lm_head.weight", (d) => writeCheckpoint(d, TINY, { config: { tie_word_embeddings: false } }), "weights", ["lm_head.weight", "tie_word_embeddings"]],
  ["config for more layers than the file has", (d) => writeCheckpoint(d, TINY, { config: { decoder_layers: 3 } }), "weights", ["model.layers.2.", "and 10 more"]],
  ["bad JSON in config.json", (d) => writeCheckpoint(d, TINY, { configText: '{"decoder_embed_dim": 8,' }), "format", ["config.json", "not valid JSON"]],
  ["a config value that makes no model", (d) => writeCheckpoint(d, TINY, { config: { decoder_attention_heads: 3 } }), "config", ["config.json", "3 heads"]],
  ["a config of another model type", (d) => writeCheckpoint(d, TINY, { config: { model_type: "llama" } }), "config", ["config.json", "llama"]],
  ["bad JSON in the index", (d) => writeCheckpoint(d, TINY, { shards: 2, indexText: "{weight_map" }), "format", ["model.safetensors.index.json", "not valid JSON"]],
  ["an index without weight_map", (d) => writeCheckpoint(d, TINY, { shards: 2, indexText: '{"metadata": {}}' }), "format", ["model.safetensors.index.json", "weight_map"]],
  ["an index pointing outside the folder", (d) => writeCheckpoint(d, TINY, { shards: 2, indexText: JSON.stringify({ weight_map: { "model.embed_tokens.weight": "../../etc/passwd" } }) }), "format", ["model.safetensors.index.json", "../../etc/passwd"]],
  ["an index naming a missing shard", (d) => writeCheckpoint(d, TINY, { shards: 2, indexText: JSON.stringify({ weight_map: { "model.embed_tokens.weight": "model-00009-of-00009.safetensors" } }) }), "io", ["model-00009-of-00009.safetensors"]],
  [
    "an index listing a tensor its shard lacks",
    (d) => {
      writeCheckpoint(d, TINY, { shards: 2 });
      const index = JSON.parse(readFileSync(join(d, "model.safetensors.index.json"), "utf8"));
      index.weight_map["model.layers.0.token_mixer.q_proj.weight"] = "model-00002-of-00002.safetensors";
      writeFileSync(join(d, "model.safetensors.index.json"), JSON.stringify(index));
    },
    "weights",
    ["model-00002-of-00002.safetensors", "q_proj.weight", "listed in model.safetensors.index.json"],
  ],
  ["a corrupt weights file", (d) => (writeCheckpoint(d, TINY), writeFileSync(join(d, "model.safetensors"), "garbage!garbage")), "format", ["model.safetensors", "header length"]],
  ["no weights file", (d) => (writeCheckpoint(d, TINY), rmSync(join(d, "model.safetensors"))), "io", ["no model.safetensors"]],
  ["only pytorch_model.bin", (d) => (writeCheckpoint(d, TINY), rmSync(join(d, "model.safetensors")), writeFileSync(join(d, "pytorch_model.bin"), "x")), "io", ["pytorch_model.bin", "convert"]],
  ["no config.json", (d) => (writeCheckpoint(d, TINY), rmSync(join(d, "config.json"))), "io", ["config.json", "no such file"]],
];

for (const [what, make, kind, mentions] of FAILURES)
  test(`refused: ${what}`, async () => {
    const dir = folder();
    make(dir);
    await rejects(() => openCheckpoint(dir), kind, [dir, ...mentions]);
  });

test("refused: a folder that does not exist, or a file instead of a folder", async () => {
  await rejects(() => openCheckpoint(join(root, "nowhere")), "io", ["nowhere", "no such folder"]);
  const file = join(root, "plain-file");
  writeFileSync(file, "x");
  await rejects(() => openCheckpoint(file), "io", ["plain-file", "not a folder"]);
});

test("sources given without an index are one checkpoint; a tensor in two files is refused", async () => {
  const list = metalaTensors(TINY);
  const encode = (part) =>
    encodeSafetensors(
      part.map(({ name, shape }) => {
        const i = list.findIndex((t) => t.name === name);
        return { name, dtype: "F32", shape, data: f32Bytes(testValues(i, shape.reduce((a, b) => a * b, 1))) };
      }),
    );
  const a = new MemorySource(encode(list.slice(0, 5)), "a.safetensors");
  const b = new MemorySource(encode(list.slice(5)), "b.safetensors");
  const ckpt = await openCheckpointFromSources({ label: "two", config: configJson(TINY), files: new Map([["a", a], ["b", b]]) });
  assert.equal(Array.from(await ckpt.read(list[7].name)), testValues(7, list[7].shape.reduce((x, y) => x * y, 1)));
  const dup = new MemorySource(encode(list.slice(4, 6)), "dup.safetensors");
  await rejects(
    () => openCheckpointFromSources({ label: "dup", config: configJson(TINY), files: { a, b, dup } }),
    "format",
    ["dup.safetensors", "also in"],
  );
});

test("presets: the table's sizes, a WeightSource of every expected tensor, seeded and deterministic", async () => {
  assert.equal(PRESETS.map((p) => p.name), ["metala-380m", "metala-1b"]);
  const sizes = { "metala-380m": [1024, 24, 8, 2816], "metala-1b": [1536, 32, 16, 4096] };
  for (const p of PRESETS) {
    const s = presetSource(p.name);
    const [d, layers, heads, glu] = sizes[p.name];
    assert.equal([s.config.hiddenSize, s.config.numLayers, s.config.numHeads, s.config.gluDim, s.config.vocabSize], [d, layers, heads, glu, 32000]);
    assert.is(s.tiedHead, false);
    const tensors = metalaTensors({ d, layers, heads, glu, vocab: 32000, untied: true });
    for (const t of tensors) assert.equal(s.shape(t.name), t.shape, t.name);
    const params = tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
    assert.is(s.storedBytes, 4 * params);
  }
  const small = presetSource("metala-380m");
  const q = await small.read("model.layers.3.token_mixer.q_proj.weight");
  const again = await small.read("model.layers.3.token_mixer.q_proj.weight", new Float32Array(q.length));
  assert.equal(again, q, "same tensor, same values");
  const other = await small.read("model.layers.4.token_mixer.q_proj.weight");
  assert.not.equal(other.slice(0, 16), q.slice(0, 16), "each tensor its own stream");
  const reseeded = await presetSource("metala-380m", 2).read("model.layers.3.token_mixer.q_proj.weight");
  assert.not.equal(reseeded.slice(0, 16), q.slice(0, 16), "the seed changes the model");

  const stats = (a) => {
    let m = 0;
    for (const v of a) m += v / a.length;
    let s = 0;
    for (const v of a) s += (v - m) ** 2 / a.length;
    return { mean: m, std: Math.sqrt(s) };
  };
  const qs = stats(q);
  assert.ok(Math.abs(qs.mean) < 1e-3 && Math.abs(qs.std - 1 / 32) < 1e-3, `q_proj ~ N(0, 1/1024): ${JSON.stringify(qs)}`);
  const l3 = stats(await small.read("model.layers.0.channel_mixer.l3.weight"));
  assert.ok(Math.abs(l3.std - 1 / Math.sqrt(2816)) < 1e-3, `l3 std ~ 1/sqrt(glu): ${JSON.stringify(l3)}`);
  for (const name of ["model.layers.0.token_mixer.conv1d.weight", "model.layers.0.token_mixer.aug_balance"]) {
    const st = stats(await small.read(name));
    assert.ok(st.std > 0.05, `${name} is not zero: ${JSON.stringify(st)}`);
  }
  assert.throws(() => presetSource("metala-7b"), (e) => e instanceof MetalaError && e.kind === "usage" && e.message.includes("metala-380m"));
});

test("browser-safe modules never statically import node: modules (openCheckpoint reaches node:fs only by dynamic import)", () => {
  const dist = resolve(dirname(fileURLToPath(import.meta.url)), "../dist");
  const seen = new Set();
  const visit = (file, chain) => {
    if (seen.has(file)) return;
    seen.add(file);
    const code = readFileSync(file, "utf8");
    // Static imports and re-exports only: `import x from "y"`, `import "y"`, `export ... from "y"`.
    for (const m of code.matchAll(/^(?:import|export)\s[^;]*?from\s*"([^"]+)"|^import\s*"([^"]+)"/gm)) {
      const spec = m[1] ?? m[2];
      if (spec.startsWith("node:")) assert.unreachable(`${[...chain, file].join(" -> ")} imports ${spec}`);
      if (spec.startsWith(".")) visit(resolve(dirname(file), spec), [...chain, file]);
    }
  };
  for (const entry of ["model/checkpoint.js", "model/preset.js", "io/url-source.js", "io/blob-source.js"]) visit(join(dist, entry), []);
  assert.ok(seen.has(join(dist, "io/safetensors.js")), "the walk follows imports");
  assert.not.ok(seen.has(join(dist, "io/node-folder.js")));
});

test.run();
