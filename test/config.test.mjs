// parseConfig against the official MetaLAConfig (metala/configuration_metala.py):
// its field names and defaults, the Hugging Face aliases, and the values
// that make no model.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { MetalaError } from "../dist/errors.js";
import { parameterCount, parseConfig } from "../dist/model/config.js";
import { expectedTensors } from "../dist/model/names.js";
import { configJson, metalaTensors } from "./helpers/safetensors-writer.mjs";

function refused(raw, mentions) {
  try {
    parseConfig(raw, "models/x/config.json");
  } catch (e) {
    assert.instance(e, MetalaError, `expected a MetalaError, got ${e?.stack ?? e}`);
    assert.is(e.kind, "config");
    for (const m of ["models/x/config.json", ...mentions]) assert.ok(e.message.includes(m), `"${e.message}" should mention ${m}`);
    return;
  }
  assert.unreachable(`accepted ${JSON.stringify(raw)}`);
}

test("an empty config means the official defaults", () => {
  const c = parseConfig({});
  // Defaults of MetaLAConfig.__init__ in the official code.
  assert.equal(
    [c.hiddenSize, c.numLayers, c.numHeads, c.gluDim, c.vocabSize, c.gluAct, c.bias, c.normType, c.noScaleEmbedding],
    [1024, 24, 8, 5632, 32000, "silu", false, "simplermsnorm", true],
  );
  assert.equal([c.padTokenId, c.bosTokenId, c.eosTokenId], [2, 1, 2]);
  assert.is(c.tieWordEmbeddings, undefined);
  assert.equal([c.keyDim, c.headKeyDim, c.headValueDim], [512, 64, 128]);
});

test("official field names and Hugging Face aliases", () => {
  const official = parseConfig({
    model_type: "metala",
    decoder_embed_dim: 96,
    decoder_layers: 3,
    decoder_attention_heads: 3,
    glu_dim: 160,
    vocab_size: 300,
    glu_act: "gelu",
    bias: true,
    norm_type: "layernorm",
    no_scale_embedding: false,
    tie_word_embeddings: false,
    eos_token_id: [7, 8],
    pad_token_id: null,
  });
  assert.equal(
    [official.hiddenSize, official.numLayers, official.numHeads, official.gluDim, official.vocabSize, official.gluAct, official.bias, official.normType],
    [96, 3, 3, 160, 300, "gelu", true, "layernorm"],
  );
  assert.equal([official.noScaleEmbedding, official.tieWordEmbeddings, official.eosTokenId, official.padTokenId], [false, false, 7, null]);
  assert.equal([official.keyDim, official.headKeyDim, official.headValueDim], [48, 16, 32]);
  const alias = parseConfig({ hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 100, hidden_act: "relu" });
  assert.equal([alias.hiddenSize, alias.numLayers, alias.numHeads, alias.gluDim, alias.gluAct], [64, 2, 4, 100, "relu"]);
});

test("glu_dim -1 means the hidden size, as in the official decoder layer", () => {
  assert.is(parseConfig({ decoder_embed_dim: 64, decoder_attention_heads: 2, glu_dim: -1 }).gluDim, 64);
});

const BAD = [
  [{ decoder_embed_dim: 63 }, ["decoder_embed_dim", "even"]],
  [{ decoder_embed_dim: 64, decoder_attention_heads: 3 }, ["3 heads"]],
  [{ decoder_embed_dim: 8, decoder_attention_heads: 8 }, ["8 heads"]],
  [{ decoder_layers: 0 }, ["decoder_layers", "positive integer"]],
  [{ decoder_layers: -2 }, ["decoder_layers"]],
  [{ decoder_layers: 2.5 }, ["decoder_layers"]],
  [{ decoder_embed_dim: "1024" }, ["decoder_embed_dim", '"1024"']],
  [{ vocab_size: 1e300 }, ["vocab_size"]],
  [{ vocab_size: true }, ["vocab_size"]],
  [{ glu_dim: -2 }, ["glu_dim"]],
  [{ glu_dim: 0 }, ["glu_dim"]],
  [{ glu_act: "swiglu" }, ["glu_act", "swiglu"]],
  [{ glu_act: 3 }, ["glu_act"]],
  [{ norm_type: "rmsnorm" }, ["norm_type", "rmsnorm"]],
  [{ bias: "yes" }, ["bias"]],
  [{ no_scale_embedding: 1 }, ["no_scale_embedding"]],
  [{ tie_word_embeddings: "false" }, ["tie_word_embeddings"]],
  [{ eos_token_id: -1 }, ["eos_token_id"]],
  [{ bos_token_id: "<s>" }, ["bos_token_id"]],
  [{ model_type: "llama" }, ["model_type", "llama"]],
  [[], ["JSON object"]],
  [null, ["JSON object"]],
  ["config", ["JSON object"]],
];
for (const [raw, mentions] of BAD) test(`refused: ${JSON.stringify(raw)}`, () => refused(raw, mentions));

test("expectedTensors lists exactly the official names and shapes (spec section 3)", () => {
  const shapes = [
    { d: 64, layers: 2, heads: 2, glu: 96, vocab: 256 },
    { d: 96, layers: 3, heads: 3, glu: 160, vocab: 300, untied: true },
    { d: 32, layers: 1, heads: 4, glu: 48, vocab: 50, bias: true, layernorm: true, untied: true },
  ];
  for (const c of shapes) {
    const cfg = parseConfig(configJson(c, { tie_word_embeddings: !c.untied }));
    const official = new Map(metalaTensors({ ...c, untied: true }).map((t) => [t.name, t.shape]));
    const ours = expectedTensors(cfg);
    assert.equal(new Map(ours.map((t) => [t.name, t.shape])), official);
    assert.is(ours.find((t) => t.name === "lm_head.weight").optional, !c.untied);
    const stored = (tied) => metalaTensors({ ...c, untied: !tied }).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
    assert.is(parameterCount(cfg, true), stored(true));
    assert.is(parameterCount(cfg, false), stored(false));
  }
});

test.run();
