import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync, mkdtempSync, writeFileSync, copyFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { loadTokenizer } from "../dist/tokenizer/load.js";
import { loadTokenizerFromDir, readTokenizerFiles } from "../dist/tokenizer/node.js";
import { pythonPatternToJs, CL100K_PATTERN } from "../dist/tokenizer/tiktoken-pattern.js";
import { MetalaError } from "../dist/errors.js";

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, "fixtures", "tokenizers");
const expected = JSON.parse(readFileSync(join(fixtures, "expected.json"), "utf8"));

const bpe = await loadTokenizerFromDir(join(fixtures, "bpe"));
const tik = await loadTokenizerFromDir(join(fixtures, "tiktoken"));
const bare = await loadTokenizerFromDir(join(fixtures, "tiktoken-bare"));

// Texts no fixture was trained on: multi-byte characters split across tokens, combining marks, surrogate pairs.
const UNICODE = ["naïve café", "日本語のテキスト", "🙂🙃 👩‍👩‍👧 flags 🇫🇷", "e\u0301 Å Ω ∑ x² ½", "tab\there\r\nwindows", "😀".repeat(5), "mixed 中文 and English 123"];

function throwsMetala(fn, kind, pattern) {
  try {
    fn();
  } catch (e) {
    assert.instance(e, MetalaError, `expected a MetalaError, got ${e}`);
    assert.is(e.kind, kind, e.message);
    if (pattern) assert.match(e.message, pattern);
    return e;
  }
  assert.unreachable("no error thrown");
}

function streamed(tok, ids, options) {
  const stream = tok.createDecodeStream(options);
  const pieces = ids.map((id) => stream.push(id));
  pieces.push(stream.flush());
  return pieces;
}

test("huggingface: ids match the reference encoder", () => {
  assert.is(bpe.kind, "huggingface");
  for (const c of expected.bpe.cases) assert.equal(bpe.encode(c.text, { addSpecialTokens: false }), c.ids, c.text);
});

test("huggingface: special tokens, bos added by the post-processor", () => {
  assert.is(bpe.vocabSize, expected.bpe.vocab_size);
  assert.is(bpe.bosTokenId, expected.bpe.bos);
  assert.is(bpe.eosTokenId, expected.bpe.eos);
  assert.is(bpe.specialTokens.get("<|endoftext|>"), expected.bpe.eos);
  const c = expected.bpe.cases[0];
  assert.equal(bpe.encode(c.text), [expected.bpe.bos, ...c.ids]);
  const withSpecials = [expected.bpe.bos, ...c.ids, expected.bpe.eos];
  assert.is(bpe.decode(withSpecials), `<|bos|>${c.text}<|endoftext|>`);
  assert.is(bpe.decode(withSpecials, { skipSpecialTokens: true }), c.text);
});

test("tiktoken: ids match the reference encoder, Python pattern translated", () => {
  assert.is(tik.kind, "tiktoken");
  assert.equal(tik.notes, []);
  for (const c of expected.tiktoken.cases) assert.equal(tik.encode(c.text), c.ids, c.text);
});

test("tiktoken: special tokens from added_tokens_decoder", () => {
  assert.is(tik.vocabSize, expected.tiktoken.vocab_size);
  assert.is(tik.eosTokenId, expected.tiktoken.eos);
  assert.is(tik.bosTokenId, null);
  assert.equal(Object.fromEntries(tik.specialTokens), expected.tiktoken.specials);
  const eos = expected.tiktoken.eos;
  const ids = tik.encode("a<|im_start|>b");
  assert.ok(ids.includes(expected.tiktoken.specials["<|im_start|>"]));
  assert.is(tik.decode([...tik.encode("hi"), eos]), "hi<|endoftext|>");
  assert.is(tik.decode([...tik.encode("hi"), eos], { skipSpecialTokens: true }), "hi");
});

test("tiktoken without a config: cl100k pattern, no specials, and notes saying so", () => {
  assert.ok(bare.notes.some((n) => /cl100k/.test(n)), bare.notes.join("; "));
  assert.ok(bare.notes.some((n) => /no special tokens/.test(n)));
  assert.is(bare.specialTokens.size, 0);
  for (const c of expected.tiktoken.bare_cases) assert.equal(bare.encode(c.text), c.ids, c.text);
});

test("a 100k vocabulary (js-tiktoken's cl100k, as a .tiktoken file) encodes as js-tiktoken's own cl100k", async () => {
  const { default: ranks } = await import("js-tiktoken/ranks/cl100k_base");
  const { Tiktoken } = await import("js-tiktoken/lite");
  const lines = [];
  for (const line of ranks.bpe_ranks.split("\n")) {
    const [, offset, ...tokens] = line.split(" ");
    tokens.forEach((t, i) => lines.push(`${t} ${Number(offset) + i}`));
  }
  const t = loadTokenizer({ "cl100k.tiktoken": lines.join("\n"), "tokenizer_config.json": JSON.stringify({ special_tokens: ranks.special_tokens }) }, "mem");
  const ref = new Tiktoken(ranks);
  assert.is(t.vocabSize, 100277);
  for (const text of [...UNICODE, "The jury's 12345 IT'LL  be\n\n fine<|endoftext|>", "  x = f(y) ;; // 3.14159"])
    assert.equal(t.encode(text), ref.encode(text, "all"), text);
});

test("round trips, unicode included", () => {
  for (const tok of [bpe, tik, bare])
    for (const text of [...expected.bpe.cases.map((c) => c.text), ...UNICODE])
      assert.is(tok.decode(tok.encode(text, { addSpecialTokens: false })), text, `${tok.kind}: ${text}`);
});

test("decode stream: pieces join to the full decode and never split a character", () => {
  for (const tok of [bpe, tik])
    for (const text of UNICODE) {
      const ids = tok.encode(text, { addSpecialTokens: false });
      const pieces = streamed(tok, ids);
      assert.is(pieces.join(""), text, `${tok.kind}: ${text}`);
      for (const p of pieces) {
        assert.not.ok(p.includes("\uFFFD"), `${tok.kind}: piece ${JSON.stringify(p)} of ${text}`);
        assert.not.ok(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(p), "lone surrogate");
      }
    }
});

test("decode stream: an emoji spread over several tokens is held back until complete", () => {
  for (const tok of [bpe, tik]) {
    const ids = tok.encode("😀", { addSpecialTokens: false });
    assert.ok(ids.length > 1, `${tok.kind}: the fixture should split 😀 (got ${ids})`);
    const pieces = streamed(tok, ids);
    assert.equal(pieces.slice(0, ids.length - 1), new Array(ids.length - 1).fill(""), tok.kind);
    assert.is(pieces[ids.length - 1], "😀");
  }
});

test("decode stream: an incomplete character at the end comes out at flush", () => {
  const ids = tik.encode("😀", { addSpecialTokens: false });
  const stream = tik.createDecodeStream();
  for (const id of ids.slice(0, -1)) assert.is(stream.push(id), "");
  assert.is(stream.flush(), "\uFFFD");
});

test("decode stream: special tokens shown or skipped", () => {
  const ids = [...tik.encode("ab"), expected.tiktoken.eos, ...tik.encode("c")];
  assert.is(streamed(tik, ids).join(""), "ab<|endoftext|>c");
  assert.is(streamed(tik, ids, { skipSpecialTokens: true }).join(""), "abc");
  const hids = [...bpe.encode("ab"), expected.bpe.eos];
  assert.is(streamed(bpe, hids, { skipSpecialTokens: true }).join(""), "ab");
});

test("decode: ids outside the vocabulary are an input error", () => {
  for (const tok of [bpe, tik]) {
    throwsMetala(() => tok.decode([1, tok.vocabSize]), "input", new RegExp(String(tok.vocabSize)));
    throwsMetala(() => tok.decode([-1]), "input");
    throwsMetala(() => tok.createDecodeStream().push(1.5), "input");
  }
  assert.is(bpe.decode([]), "");
  assert.is(tik.decode([]), "");
});

test("files given as contents (the browser path) give the same tokenizer", async () => {
  const files = await readTokenizerFiles(join(fixtures, "tiktoken"));
  assert.equal(Object.keys(files).sort(), ["small.tiktoken", "tokenizer_config.json"]);
  const t = loadTokenizer(files, "memory");
  assert.equal(t.encode(UNICODE[2]), tik.encode(UNICODE[2]));
});

const vocab = readFileSync(join(fixtures, "tiktoken", "small.tiktoken"), "utf8");
const bpeJson = readFileSync(join(fixtures, "bpe", "tokenizer.json"), "utf8");

test("bad files: one clear error naming the file", () => {
  throwsMetala(() => loadTokenizer({ "config.json": "{}" }, "dir"), "io", /dir: no tokenizer \(looked for tokenizer\.json and \*\.tiktoken\)/);
  throwsMetala(() => loadTokenizer({ "tokenizer.json": "{oops" }, "dir"), "format", /dir\/tokenizer\.json: not valid JSON/);
  throwsMetala(() => loadTokenizer({ "tokenizer.json": "[1,2]" }, "dir"), "format", /tokenizer\.json: expected a JSON object/);
  throwsMetala(() => loadTokenizer({ "tokenizer.json": '{"version": "1.0"}' }, "dir"), "format", /no "model" section/);
  throwsMetala(() => loadTokenizer({ "tokenizer.json": bpeJson, "tokenizer_config.json": "{" }, "dir"), "format", /tokenizer_config\.json: not valid JSON/);
  const badModel = JSON.parse(bpeJson);
  badModel.model = { type: "Nonsense" };
  throwsMetala(() => loadTokenizer({ "tokenizer.json": JSON.stringify(badModel) }, "dir"), "format", /dir\/tokenizer\.json: Unknown TokenizerModel type: Nonsense/);
});

test("bad tiktoken vocabularies and configs", () => {
  const lines = vocab.trimEnd().split("\n");
  const withLine = (i, line) => lines.map((l, j) => (j === i ? line : l)).join("\n");
  throwsMetala(() => loadTokenizer({ "v.tiktoken": withLine(3, "not base64! 3") }, "dir"), "format", /dir\/v\.tiktoken line 4: expected/);
  throwsMetala(() => loadTokenizer({ "v.tiktoken": withLine(3, "QQ== 3 7") }, "dir"), "format", /line 4/);
  throwsMetala(() => loadTokenizer({ "v.tiktoken": withLine(3, lines[3].split(" ")[0] + " 2") }, "dir"), "format", /rank 2 appears twice/);
  throwsMetala(() => loadTokenizer({ "v.tiktoken": lines.slice(1).join("\n") }, "dir"), "format", /byte 0x00 has no token/);
  throwsMetala(() => loadTokenizer({ "v.tiktoken": "" }, "dir"), "format", /no tokens/);
  throwsMetala(() => loadTokenizer({ "a.tiktoken": vocab, "b.tiktoken": vocab }, "dir"), "format", /several tiktoken vocabularies \(a\.tiktoken, b\.tiktoken\)/);
  const picked = loadTokenizer({ "a.tiktoken": "garbage", "b.tiktoken": vocab, "tokenizer_config.json": '{"vocab_file": "b.tiktoken"}' }, "dir");
  assert.equal(picked.encode("hello"), bare.encode("hello"));
  const cfg = (o) => ({ "v.tiktoken": vocab, "tokenizer_config.json": JSON.stringify(o) });
  throwsMetala(() => loadTokenizer(cfg({ pat_str: "(unclosed" }), "dir"), "format", /pat_str: the regex pattern does not compile/);
  throwsMetala(() => loadTokenizer(cfg({ pat_str: 7 }), "dir"), "format", /"pat_str" must be a string/);
  throwsMetala(() => loadTokenizer(cfg({ special_tokens: { "<x>": 5 } }), "dir"), "format", /"<x>" has id 5, which dir\/v\.tiktoken already gives/);
  throwsMetala(() => loadTokenizer(cfg({ special_tokens: { "<x>": "a" } }), "dir"), "format", /needs a non-negative integer id/);
  throwsMetala(() => loadTokenizer(cfg({ added_tokens_decoder: [] }), "dir"), "format", /added_tokens_decoder/);
});

test("tiktoken config: special_tokens map, bos/eos added when the config asks", () => {
  const n = expected.tiktoken.vocab_size - 3;
  const t = loadTokenizer(
    { "v.tiktoken": vocab, "tokenizer_config.json": JSON.stringify({ special_tokens: { "<s>": n, "</s>": n + 1 }, bos_token: "<s>", eos_token: { content: "</s>" }, add_bos_token: true, unk_token: "<unk>" }) },
    "dir",
  );
  assert.is(t.bosTokenId, n);
  assert.is(t.eosTokenId, n + 1);
  assert.equal(t.encode("hi"), [n, ...bare.encode("hi")]);
  assert.equal(t.encode("hi", { addSpecialTokens: false }), bare.encode("hi"));
  const noted = loadTokenizer({ "v.tiktoken": vocab, "tokenizer_config.json": JSON.stringify({ eos_token: "<|nope|>" }) }, "dir");
  assert.is(noted.eosTokenId, null);
  assert.ok(noted.notes.some((x) => x.includes("<|nope|>")));
});

test("Python regex constructs are translated for JavaScript", () => {
  const ci = new RegExp(pythonPatternToJs("(?i:'s|'ll)|x"), "u");
  for (const s of ["'s", "'S", "'ll", "'LL", "'lL"]) assert.ok(new RegExp(`^(?:${pythonPatternToJs("(?i:'s|'ll)")})$`, "u").test(s), s);
  assert.not.ok(ci.test("X"), "case-insensitivity must stay inside its group");
  assert.ok(new RegExp(`^(?:${pythonPatternToJs("(?i:[sdmt]|ll)")})$`, "u").test("D"));
  assert.ok(new RegExp(`^(?:${pythonPatternToJs("(?i:[a-c])")})$`, "u").test("B"));
  assert.is(pythonPatternToJs(String.raw`[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|\s++$|(?>ab)`), String.raw`[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|\s+$|(?:ab)`);
  assert.is(pythonPatternToJs(CL100K_PATTERN), CL100K_PATTERN, "a JS pattern passes through unchanged");
  assert.is(pythonPatternToJs(String.raw`\++|[+]+|(?:a)`), String.raw`\++|[+]+|(?:a)`, "escaped and class pluses are not possessive marks");
});

test("folder reading: only tokenizer files are read; unreadable folder is an io error", async () => {
  const dir = mkdtempSync(join(tmpdir(), "metala-tok-"));
  try {
    copyFileSync(join(fixtures, "tiktoken", "small.tiktoken"), join(dir, "small.tiktoken"));
    writeFileSync(join(dir, "model.safetensors"), "not read");
    assert.equal(Object.keys(await readTokenizerFiles(dir)), ["small.tiktoken"]);
    await loadTokenizerFromDir(join(dir, "missing")).then(
      () => assert.unreachable(),
      (e) => {
        assert.instance(e, MetalaError);
        assert.is(e.kind, "io");
        assert.match(e.message, /missing: cannot list the folder/);
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
