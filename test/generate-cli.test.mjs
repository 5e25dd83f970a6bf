// `metala generate` end to end, in a child process. Expected tokens come from
// a plain greedy loop over the reference engine (no runtime code involved).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openCheckpoint } from "../dist/model/checkpoint.js";
import { createReferenceEngine } from "../dist/reference/engine.js";
import { loadTokenizerFromDir } from "../dist/tokenizer/node.js";
import { argmax } from "../dist/generate/sampling.js";
import { FIXTURES_DIR } from "./helpers/fixtures.mjs";
import { writeCheckpoint } from "./helpers/safetensors-writer.mjs";

const BIN = fileURLToPath(new URL("../bin/metala.js", import.meta.url));
const TINY = join(FIXTURES_DIR, "tiny-f32");

function metala(...args) {
  const r = spawnSync(process.execPath, [BIN, "generate", ...args], { encoding: "utf8", env: { ...process.env, XDG_CACHE_HOME: CACHE } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const CACHE = mkdtempSync(join(tmpdir(), "metala-cli-cache-"));

async function greedy(dir, prompt, n) {
  const source = await openCheckpoint(dir);
  const s = (await createReferenceEngine(source)).createSession();
  let logits = (await s.prefill(prompt, "last"))[0];
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push(argmax(logits));
    logits = await s.step(out[i]);
  }
  await source.close();
  return out;
}

test("--tokens --json on the reference engine: the greedy tokens and what ran", async () => {
  const r = metala("--model", TINY, "--tokens", "5,9,13", "--max-tokens", "12", "--device", "reference", "--ignore-eos", "--json");
  assert.is(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.tokens, await greedy(TINY, [5, 9, 13], 12));
  assert.is(j.finish_reason, "length");
  assert.is(j.prompt_tokens, 3);
  assert.is(j.prefill_engine, "reference");
  assert.equal(j.decode_engines, ["reference"]);
  assert.ok(j.decode_tokens_per_s > 0);
  assert.match(r.err, /prefill: reference, 3 tokens, [\d.]+ tok\/s; decode: reference, 11 tokens, [\d.]+ tok\/s/);
});

test("--prompt on a model with a tokenizer streams the decoded text; --stop cuts it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "metala-textmodel-"));
  writeCheckpoint(dir, { d: 32, layers: 2, heads: 2, glu: 48, vocab: 338 });
  const bpe = join(FIXTURES_DIR, "tokenizers", "bpe");
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(bpe, f), join(dir, f));
  const tk = await loadTokenizerFromDir(dir);
  const ids = tk.encode("The jury said");
  const tokens = await greedy(dir, ids, 10);
  const text = tk.decode(tokens, { skipSpecialTokens: true });
  const r = metala("--model", dir, "--prompt", "The jury said", "--max-tokens", "10", "--device", "reference", "--ignore-eos");
  assert.is(r.code, 0, r.err);
  assert.is(r.out, text + "\n");
  // stop at a string from the middle of that text
  const cut = text.slice(2, 4);
  assert.is(cut.length, 2, "the model generated text to cut");
  {
    const s = metala("--model", dir, "--prompt", "The jury said", "--max-tokens", "10", "--device", "reference", "--ignore-eos", "--stop", cut, "--json");
    assert.is(s.code, 0, s.err);
    const j = JSON.parse(s.out);
    assert.is(j.text, text.slice(0, text.indexOf(cut)));
    assert.is(j.finish_reason, "stop");
  }
});

test("user errors: one line, exit 2 for flags, 1 for input", () => {
  const cases = [
    [[], 2, /exactly one of --prompt TEXT or --tokens/],
    [["--prompt", "a", "--tokens", "1"], 2, /exactly one of/],
    [["--tokens", "1", "--device", "tpu"], 2, /--device must be one of/],
    [["--tokens", "1", "--max-tokens", "x"], 2, /--max-tokens must be an integer/],
    [["--tokens", "1,a"], 2, /--tokens: item 2/],
    [["--model", TINY, "--prompt", "hello"], 1, /no tokenizer/],
    [["--model", TINY, "--tokens", "5,999", "--device", "reference"], 1, /token id 999 is out of range/],
    [["--model", "/nonexistent/dir", "--tokens", "1"], 1, /no such folder/],
  ];
  for (const [args, code, pattern] of cases) {
    const r = metala(...args);
    assert.is(r.code, code, `${args.join(" ")}: ${r.err}`);
    const lines = r.err.split("\n").filter((l) => l.startsWith("metala:"));
    assert.is(lines.length, 1, r.err);
    assert.match(lines[0], pattern);
    assert.not.match(r.err, /\n\s+at /, "no stack trace");
  }
});

test("--device webgpu where there is no adapter: one line, with the drivers' own warnings kept out (generate, eval, bench)", () => {
  // no Vulkan driver to find, and the Vulkan loader asked to report all it does, where it is loaded
  const env = { ...process.env, XDG_CACHE_HOME: CACHE, VK_ICD_FILENAMES: join(CACHE, "no-such-icd.json"), VK_LOADER_DEBUG: "all" };
  for (const args of [["generate", "--model", TINY, "--tokens", "1", "--device", "webgpu"], ["generate", "--model", TINY, "--tokens", "1", "--decode-device", "webgpu"], ["eval", "--model", TINY, "--tokens", "1,2", "--device", "webgpu"], ["bench", "--preset", "metala-380m", "--device", "webgpu"]]) {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env });
    assert.is(r.status, 1, `${args.join(" ")}: ${r.stderr}`);
    assert.is(r.stderr, "metala: WebGPU is not available: no adapter (no GPU, or no Vulkan/Metal/D3D driver)\n", args.join(" "));
  }
});

test.run();
