import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { openCheckpoint } from "../dist/model/checkpoint.js";
import { parameterCount } from "../dist/model/config.js";
import { createReferenceEngine } from "../dist/reference/engine.js";
import { loadTokenizerFromDir } from "../dist/tokenizer/node.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dir = join(root, "models", "metala-brown");
const ref = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8"));
const sampleText = readFileSync(join(dir, "heldout-sample.txt"), "utf8");
/** The parity bound: the runtime's perplexity within 0.5% of PyTorch's. */
const PPL_TOLERANCE = 0.005;

function metala(...args) {
  const r = spawnSync(process.execPath, [join(root, "bin", "metala.js"), ...args], { encoding: "utf8", timeout: 600_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function logSoftmaxAt(logits, target) {
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  return logits[target] - max - Math.log(sum);
}

test("the embedded model is small: 5-20M parameters, at most 20 MB of f16 weights, official tensor names", async () => {
  const source = await openCheckpoint(dir);
  try {
    const params = parameterCount(source.config, source.tiedHead);
    assert.ok(params >= 5e6 && params <= 20e6, `${params} parameters`);
    assert.is(params, ref.parameters, "the count PyTorch reported");
    assert.is(source.storedDType("model.embed_tokens.weight"), "F16");
    assert.ok(statSync(join(dir, "model.safetensors")).size <= 20 * 1024 * 1024);
  } finally {
    await source.close();
  }
});

test("the runtime's tokenizer gives the ids Python's tokenizers gave for the held-out sample", async () => {
  const tok = await loadTokenizerFromDir(dir);
  assert.equal(tok.encode(sampleText), ref.heldout_sample_token_ids);
  assert.is(tok.decode(ref.heldout_sample_token_ids), sampleText, "byte-level BPE round-trips the text");
});

test("reference engine: held-out sample perplexity within 0.5% of PyTorch's (float64, saved weights)", async () => {
  const ids = ref.heldout_sample_token_ids;
  const expected = ref.float64["heldout-sample.txt"];
  assert.is(ids.length, expected.tokens);
  const source = await openCheckpoint(dir);
  const engine = await createReferenceEngine(source);
  try {
    const session = engine.createSession();
    const logits = await session.prefill(ids, "all");
    let nll = 0;
    for (let t = 0; t + 1 < ids.length; t++) nll -= logSoftmaxAt(logits[t], ids[t + 1]);
    nll /= ids.length - 1;
    const rel = Math.abs(Math.exp(nll) - expected.ppl) / expected.ppl;
    assert.ok(rel < PPL_TOLERANCE, `runtime ppl ${Math.exp(nll)} vs PyTorch ${expected.ppl} (relative ${rel})`);
    // Same weights, same math: the two should in fact agree far more closely than the contract asks.
    assert.ok(Math.abs(nll - expected.nll) < 1e-4, `nll ${nll} vs ${expected.nll}`);
    session.dispose();
  } finally {
    await engine.dispose();
    await source.close();
  }
});

for (const device of ["reference", "wasm"])
  test(`metala eval --file on the held-out sample reports PyTorch's perplexity (default model, ${device} engine)`, () => {
    const r = metala("eval", "--file", join(dir, "heldout-sample.txt"), "--device", device, "--json");
    assert.is(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const expected = ref.float64["heldout-sample.txt"];
    assert.is(out.tokens, expected.tokens);
    assert.ok(Math.abs(out.ppl - expected.ppl) / expected.ppl < PPL_TOLERANCE, `${out.ppl} vs ${expected.ppl}`);
  });

test.run();
