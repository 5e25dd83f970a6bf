import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { readFileSync, mkdtempSync, mkdirSync, writeFileSync, copyFileSync, existsSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const fixtures = join(root, "test", "fixtures");
const tiny = join(fixtures, "tiny-f32");
const tmp = mkdtempSync(join(tmpdir(), "metala-cli-"));

function metala(...args) {
  const r = spawnSync(process.execPath, [join(root, "bin", "metala.js"), ...args], { encoding: "utf8", timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function evalJson(...args) {
  const r = metala("eval", ...args, "--json");
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

const expectedOf = (dir) => JSON.parse(readFileSync(join(dir, "expected.json"), "utf8"));
const caseWith = (dir, len) => expectedOf(dir).cases.find((c) => c.tokens.length === len);
const close = (a, b, tol = 1e-5) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

/** The F32 tensors of a safetensors file (enough of the format to read expected.safetensors). */
function readSafetensors(path) {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8"));
  const get = (name) => {
    const { dtype, shape, data_offsets: [b, e] } = header[name];
    assert.is(dtype, "F32");
    const bytes = buf.subarray(8 + n + b, 8 + n + e);
    return { shape, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)) };
  };
  return { header, get };
}

// A copy of tiny-f32 with the named files replaced (contents) or removed (null).
function brokenModel(name, changes) {
  const dir = join(tmp, name);
  mkdirSync(dir);
  for (const f of ["config.json", "model.safetensors"]) copyFileSync(join(tiny, f), join(dir, f));
  for (const [f, content] of Object.entries(changes)) {
    if (content === null) rmSync(join(dir, f));
    else writeFileSync(join(dir, f), content);
  }
  return dir;
}

test("eval --json: the nll of every fixture's tokens [5, 9, 13] matches expected.json", () => {
  const names = readdirSync(fixtures).filter((n) => existsSync(join(fixtures, n, "config.json")) && existsSync(join(fixtures, n, "expected.json")));
  assert.ok(names.includes("tiny-f32"));
  for (const name of names) {
    const dir = join(fixtures, name);
    const c = expectedOf(dir).cases.find((x) => x.tokens.join() === "5,9,13");
    const out = evalJson("--model", dir, "--tokens", "5,9,13");
    assert.is(out.tokens, 3);
    assert.ok(close(out.nll, c.nll), `${name}: nll ${out.nll}, expected ${c.nll}`);
    assert.ok(close(out.ppl, Math.exp(c.nll), 1e-4), `${name}: ppl ${out.ppl}`);
  }
});

test("eval: prefill in small chunks and a prefill/step split give the expected nll", () => {
  const c = caseWith(tiny, 300);
  const tokens = c.tokens.join(",");
  assert.ok(close(evalJson("--model", tiny, "--tokens", tokens, "--chunk-tokens", "64").nll, c.nll));
  const c130 = caseWith(tiny, 130);
  for (const n of ["0", "1", "64", "129", "130"]) {
    const out = evalJson("--model", tiny, "--tokens", c130.tokens.join(","), "--prefill-tokens", n, "--prefill-device", "reference", "--decode-device", "reference");
    assert.ok(close(out.nll, c130.nll), `--prefill-tokens ${n}: nll ${out.nll}, expected ${c130.nll}`);
  }
});

test("eval: the state moves between engines (reference <-> wasm) at --prefill-tokens", () => {
  const c = caseWith(tiny, 130);
  for (const [p, d] of [["reference", "wasm"], ["wasm", "reference"]]) {
    const out = evalJson("--model", tiny, "--tokens", c.tokens.join(","), "--prefill-tokens", "64", "--prefill-device", p, "--decode-device", d, "--threads", "1");
    assert.ok(close(out.nll, c.nll, 1e-4), `${p} -> ${d}: nll ${out.nll}, expected ${c.nll}`);
  }
});

test("eval plain output names the nll and perplexity", () => {
  const c = caseWith(tiny, 3);
  const r = metala("eval", "--model", tiny, "--tokens", "5,9,13");
  assert.is(r.code, 0, r.stderr);
  const nll = Number(/^nll\s+([\d.]+) nats\/token$/m.exec(r.stdout)?.[1]);
  // the default engine here is wasm f32 (logits within 1e-4 of the max logit): the nll within 1e-5, as for eval --json
  assert.ok(close(nll, c.nll), r.stdout);
  assert.match(r.stdout, /^perplexity\s+[\d.]+$/m);
  assert.match(r.stdout, /^tokens\s+3 \(2 scored\)$/m);
});

test("eval --dump-logits writes every position's logits", () => {
  const exp = expectedOf(tiny);
  const i = exp.cases.findIndex((x) => x.tokens.join() === "5,9,13");
  const out = join(tmp, "logits.json");
  evalJson("--model", tiny, "--tokens", "5,9,13", "--prefill-tokens", "1", "--dump-logits", out);
  const { logits } = JSON.parse(readFileSync(out, "utf8"));
  const want = readSafetensors(join(tiny, "expected.safetensors")).get(exp.cases[i].logits);
  assert.equal([logits.length, logits[0].length], want.shape);
  let maxAbs = 0;
  let maxErr = 0;
  logits.flat().forEach((v, k) => {
    maxAbs = Math.max(maxAbs, Math.abs(want.data[k]));
    maxErr = Math.max(maxErr, Math.abs(v - want.data[k]));
  });
  assert.ok(maxErr / maxAbs < 1e-4, `relative error ${maxErr / maxAbs}`);
});

test("eval --text tokenizes with the model folder's tokenizer", () => {
  const dir = brokenModel("with-tokenizer", {});
  copyFileSync(join(fixtures, "tokenizers", "tiktoken-bare", "vocab.tiktoken"), join(dir, "vocab.tiktoken"));
  // the fixture vocabulary's ranks 0..255 are the bytes themselves, and it has no "zq" merge
  assert.not.ok(readFileSync(join(dir, "vocab.tiktoken"), "utf8").includes(Buffer.from("zq").toString("base64")));
  const viaText = evalJson("--model", dir, "--text", "zq");
  const viaIds = evalJson("--model", dir, "--tokens", "122,113");
  assert.equal(viaText, viaIds);
  writeFileSync(join(tmp, "zq.txt"), "zq");
  assert.equal(evalJson("--model", dir, "--file", join(tmp, "zq.txt")), viaIds);
});

test("--help, --version, command help", () => {
  const help = metala("--help");
  assert.is(help.code, 0);
  for (const c of ["eval", "info", "bench", "generate", "mqar"]) assert.match(help.stdout, `metala ${c}`);
  const v = metala("--version");
  assert.is(v.code, 0);
  assert.is(v.stdout.trim(), JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version);
  const e = metala("eval", "--help");
  assert.is(e.code, 0);
  assert.match(e.stdout, "--prefill-tokens");
});

test("info: config, parameters, state size and engines, as JSON and text", () => {
  const r = metala("info", "--model", tiny, "--json");
  assert.is(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  const cfg = JSON.parse(readFileSync(join(tiny, "config.json"), "utf8"));
  const d = cfg.decoder_embed_dim;
  const L = cfg.decoder_layers;
  assert.is(info.config.hiddenSize, d);
  assert.is(info.config.numLayers, L);
  // per layer: S is [H, d/2H, d/H] = d*d/2H floats, conv is [3, d]
  assert.is(info.state.bytesPerSequence, L * ((d * d) / (2 * cfg.decoder_attention_heads) + 3 * d) * 4);
  assert.is(info.state.transformerKvCacheBytes["1024"], 1024 * 2 * L * d * 2);
  assert.is(info.engines.reference.available, true);
  assert.ok(info.tokenizer.error.includes("no tokenizer"));
  assert.is(info.storage.dtypes.F32.bytes, info.parameters * 4, "tied f32 model: 4 bytes per parameter");
  const text = metala("info", "--model", tiny);
  assert.is(text.code, 0, text.stderr);
  assert.match(text.stdout, /^parameters\s+[\d,]+/m);
  // the Vulkan loader's debug output, where it is loaded: never into the CLI's own stderr (the adapter probe runs in a child, as for --device auto)
  const quiet = spawnSync(process.execPath, [join(root, "bin", "metala.js"), "info", "--model", tiny], { encoding: "utf8", timeout: 120_000, env: { ...process.env, VK_LOADER_DEBUG: "all" } });
  assert.is(quiet.status, 0, quiet.stderr);
  assert.is(quiet.stderr, "");
  assert.match(quiet.stdout, /^engines\s+reference/m);
  const preset = metala("info", "--preset", "metala-380m", "--json");
  assert.is(preset.code, 0, preset.stderr);
  const p = JSON.parse(preset.stdout);
  assert.ok(Math.abs(p.parameters - 374e6) < 1e6, String(p.parameters));
});

test("the CLI picks the relaxed-SIMD kernels wherever this Node has them, even behind a flag; METALA_RELAXED_SIMD=0 keeps SIMD128", () => {
  // can this Node run relaxed SIMD at all (natively or with the flag)?
  const probe = "process.exit(WebAssembly.validate(new Uint8Array([0,97,115,109,1,0,0,0,1,8,1,96,3,123,123,123,1,123,3,2,1,0,10,13,1,11,0,32,0,32,1,32,2,253,133,2,11])) ? 0 : 1)";
  const capable = spawnSync(process.execPath, ["--experimental-wasm-relaxed-simd", "-e", probe]).status === 0;
  const detail = (env) => {
    const r = spawnSync(process.execPath, [join(root, "bin", "metala.js"), "info", "--model", tiny, "--json"], { encoding: "utf8", timeout: 120_000, env: { ...process.env, ...env } });
    assert.is(r.status, 0, r.stderr);
    return JSON.parse(r.stdout).engines.wasm.detail;
  };
  assert.match(detail({}), capable ? /relaxed SIMD yes/ : /relaxed SIMD no/);
  assert.match(detail({ METALA_RELAXED_SIMD: "0" }), /relaxed SIMD no/);
});

function userError(args, code, pattern) {
  const r = metala(...args);
  const label = `metala ${args.join(" ")}`;
  assert.is(r.code, code, `${label}: exit ${r.code}, stderr ${r.stderr}`);
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  assert.is(lines.length, 1, `${label}: stderr should be one line, got:\n${r.stderr}`);
  assert.not.ok(r.stderr.includes("    at "), `${label}: stack trace`);
  assert.ok(lines[0].startsWith("metala: "), lines[0]);
  if (pattern) assert.match(lines[0], pattern, label);
}

test("user errors: one line on stderr, no stack, exit 1 or 2", () => {
  const t = ["--model", tiny];
  const header = readFileSync(join(tiny, "model.safetensors"));
  const renamed = Buffer.from(header);
  const at = renamed.indexOf("model.layers.0.token_mixer.q_proj.weight");
  assert.ok(at > 0);
  renamed.write("model.layers.0.token_mixer.q_proX.weight", at); // same length: the header stays valid
  const noConfig = brokenModel("no-config", { "config.json": null });
  const badJson = brokenModel("bad-json", { "config.json": '{"decoder_embed_dim": 64,' });
  const badFile = brokenModel("bad-file", { "model.safetensors": "this is not a safetensors file at all" });
  const missingTensor = brokenModel("missing-tensor", { "model.safetensors": renamed });
  const badTokenizer = brokenModel("bad-tokenizer", { "tokenizer.json": "{not json" });
  const bigTokenizer = brokenModel("big-tokenizer", {});
  copyFileSync(join(fixtures, "tokenizers", "tiktoken", "small.tiktoken"), join(bigTokenizer, "small.tiktoken"));
  copyFileSync(join(fixtures, "tokenizers", "tiktoken", "tokenizer_config.json"), join(bigTokenizer, "tokenizer_config.json"));

  userError(["eval", "--model", join(tmp, "nope"), "--tokens", "1,2"], 1, /nope/);
  userError(["info", "--model", join(tmp, "nope")], 1, /no such folder/);
  userError(["eval", "--model", noConfig, "--tokens", "1,2"], 1, /config\.json/);
  userError(["eval", "--model", badJson, "--tokens", "1,2"], 1, /config\.json/);
  userError(["info", "--model", badJson], 1, /config\.json/);
  userError(["eval", "--model", badFile, "--tokens", "1,2"], 1, /model\.safetensors/);
  userError(["eval", "--model", missingTensor, "--tokens", "1,2"], 1, /q_proj/);
  userError(["eval", ...t, "--tokens", "1,2", "--device", "gpu"], 2, /--device/);
  userError(["eval", ...t, "--tokens", "1,2", "--prefill-tokens", "-3"], 2, /--prefill-tokens/);
  userError(["eval", ...t, "--tokens", "1,2", "--prefill-tokens", "3"], 2, /--prefill-tokens/);
  userError(["eval", ...t, "--tokens", "1,2", "--decode-device", "reference"], 2, /--prefill-tokens/);
  userError(["eval", ...t, "--tokens", "1,2", "--dtype", "q3"], 2, /--dtype/);
  userError(["eval", ...t, "--tokens", "1,2", "--frobnicate"], 2, /frobnicate/);
  userError(["eval", ...t, "--tokens"], 2, /--tokens/);
  userError(["eval", ...t, "--tokens", "1,2", "--chunk-tokens", "-3"], 2, /--chunk-tokens is followed by a word starting with "-"; .* --chunk-tokens=VALUE/);
  userError(["eval", ...t, "--tokens", "1,2", "--chunk-tokens=-3"], 2, /--chunk-tokens must be an integer .* got "-3"/);
  userError(["eval", ...t], 2, /--tokens, --text, --file/);
  userError(["eval", ...t, "--tokens", "1,2", "--text", "x"], 2, /exactly one/);
  userError(["eval", ...t, "--tokens", "5,256"], 1, /256/);
  userError(["eval", ...t, "--tokens", "5,abc"], 1, /abc/);
  userError(["eval", ...t, "--tokens", "5,-1"], 1, /-1/);
  userError(["eval", ...t, "--tokens", "5"], 1, /at least 2 tokens/);
  userError(["eval", ...t, "--text", "hello"], 1, /no tokenizer \(looked for tokenizer\.json and \*\.tiktoken\)/);
  userError(["eval", "--model", badTokenizer, "--text", "hello"], 1, /tokenizer\.json: not valid JSON/);
  userError(["eval", "--model", bigTokenizer, "--text", "a<|im_end|>"], 1, /token id 338 .*out of range/);
  userError(["eval", ...t, "--file", join(tmp, "missing.txt")], 1, /missing\.txt/);
  userError(["eval", ...t, "--tokens", "1,2", "--dump-logits", join(tmp, "nope", "out.json")], 1, /--dump-logits/);
  userError(["frobnicate"], 2, /unknown command "frobnicate"/);
  userError([], 2, /no command/);
  userError(["info", "--model", tiny, "--preset", "metala-1b"], 2, /not both/);
  userError(["info", "--preset", "metala-9t"], 2, /metala-9t/);
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
