// The generation loop (src/generate/generate.ts) over a scripted sequence:
// its logits make greedy decoding produce a chosen token list, so stop
// strings, EOS, max tokens, abort and streaming can be checked exactly.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Generation } from "../dist/generate/generate.js";
import { StopStringFilter } from "../dist/generate/stop.js";
import { loadTokenizerFromDir } from "../dist/tokenizer/node.js";

const VOCAB = 338;

/** A TokenSequence whose greedy continuation is `script`; records what was appended and consumed. */
function scripted(script) {
  let produced = 0;
  const seq = {
    appended: [],
    consumes: 0,
    append(tokens) {
      seq.appended.push(...tokens);
    },
    async next() {
      seq.consumes++;
      const logits = new Float32Array(VOCAB);
      logits[script[Math.min(produced++, script.length - 1)]] = 10;
      return { logits, report: { engine: seq.consumes === 1 ? "prefill-engine" : "decode-engine", tokens: 1, ms: 0 } };
    },
  };
  return seq;
}

/** A decoder whose token i is the text pieces[i]. */
function pieceDecoder(pieces) {
  return { push: (t) => pieces[t], flush: () => "" };
}

async function collect(gen) {
  const pieces = [];
  for await (const p of gen) pieces.push(p);
  return pieces;
}

test("stop filter: holds back possible prefixes, releases them once they cannot match", () => {
  const f = new StopStringFilter(["\nUser:"]);
  assert.equal(f.push("Hello"), { text: "Hello", stopped: false });
  assert.equal(f.push(" there\nU"), { text: " there", stopped: false });
  assert.equal(f.push("nder"), { text: "\nUnder", stopped: false });
  assert.equal(f.push("\nUs"), { text: "", stopped: false });
  assert.equal(f.push("er: hi"), { text: "", stopped: true });
});

test("stop filter: the earliest of several stop strings wins", () => {
  const f = new StopStringFilter(["END", "cE"]);
  assert.equal(f.push("abcEND"), { text: "ab", stopped: true });
});

test("max tokens: generates exactly maxNewTokens, the last one left pending", async () => {
  const seq = scripted([4, 5, 6, 7, 8]);
  const g = new Generation(seq, [1, 2, 3], { maxNewTokens: 3 }, null, null);
  const pieces = await collect(g);
  assert.equal(pieces.map((p) => p.token), [4, 5, 6]);
  assert.is(g.result.finishReason, "length");
  assert.equal(g.result.tokens, [4, 5, 6]);
  // prompt, then every generated token appended; only 3 consumes: the third token is not run yet
  assert.equal(seq.appended, [1, 2, 3, 4, 5, 6]);
  assert.is(seq.consumes, 3);
  assert.is(g.result.stats.prefillEngine, "prefill-engine");
  assert.equal(g.result.stats.decodeEngines, ["decode-engine"]);
});

test("eos ends generation unless ignored; extra stop tokens too", async () => {
  let g = new Generation(scripted([4, 9, 5]), [1], { maxNewTokens: 10 }, 9, null);
  assert.equal((await collect(g)).map((p) => p.token), [4, 9]);
  assert.is(g.result.finishReason, "eos");
  g = new Generation(scripted([4, 9, 5]), [1], { maxNewTokens: 3, ignoreEos: true }, 9, null);
  await collect(g);
  assert.equal(g.result.tokens, [4, 9, 5]);
  g = new Generation(scripted([4, 7, 5]), [1], { maxNewTokens: 10, stopTokens: [7] }, 9, null);
  await collect(g);
  assert.equal(g.result.tokens, [4, 7]);
  assert.is(g.result.finishReason, "eos");
});

test("stop string split over tokens: text before it is returned, the stop string never is", async () => {
  const pieces = ["", "Hello", " wor", "ld\n\nUs", "er: more"];
  const g = new Generation(scripted([1, 2, 3, 4]), [0], { maxNewTokens: 10, stop: ["\n\nUser:"] }, null, pieceDecoder(pieces));
  const out = await collect(g);
  assert.is(out.map((p) => p.text).join(""), "Hello world");
  assert.is(g.result.text, "Hello world");
  assert.is(g.result.finishReason, "stop");
  // the piece ending in "\n\nUs" released only "ld"
  assert.equal(out.map((p) => p.text), ["Hello", " wor", "ld", ""]);
});

test("text held back for a stop string that never comes is released at the end", async () => {
  const pieces = ["", "a", "b\n", "\nU"];
  const g = new Generation(scripted([1, 2, 3]), [0], { maxNewTokens: 3, stop: ["\n\nUser:"] }, null, pieceDecoder(pieces));
  const out = await collect(g);
  assert.is(g.result.text, "ab\n\nU");
  assert.is(out[out.length - 1].token, null);
  assert.is(out.map((p) => p.text).join(""), "ab\n\nU");
});

test("abort: an aborted signal stops the loop with an 'aborted' MetalaError", async () => {
  const ac = new AbortController();
  const seq = scripted([4, 5, 6, 7, 8, 9]);
  const g = new Generation(seq, [1], { maxNewTokens: 6, signal: ac.signal }, null, null);
  const got = [];
  try {
    for await (const p of g) {
      got.push(p.token);
      if (got.length === 2) ac.abort();
    }
    assert.unreachable("no error");
  } catch (e) {
    assert.is(e.name, "MetalaError");
    assert.is(e.kind, "aborted");
  }
  assert.equal(got, [4, 5]);
  assert.is(seq.consumes, 2);
});

test("an already aborted signal runs nothing", async () => {
  const seq = scripted([4]);
  const ac = new AbortController();
  ac.abort();
  try {
    await new Generation(seq, [1], { signal: ac.signal }, null, null).complete();
    assert.unreachable();
  } catch (e) {
    assert.is(e.kind, "aborted");
  }
  assert.is(seq.consumes, 0);
});

test("real tokenizer: streamed pieces join to the decoded text, multi-byte characters whole", async () => {
  const tk = await loadTokenizerFromDir(new URL("./fixtures/tokenizers/bpe", import.meta.url).pathname);
  const text = "Café naïve 日本語 🙂 ∑ x² The jury said it.";
  const ids = tk.encode(text, { addSpecialTokens: false });
  const g = new Generation(scripted(ids), [tk.bosTokenId], { maxNewTokens: ids.length }, tk.eosTokenId, tk.createDecodeStream({ skipSpecialTokens: true }));
  const out = await collect(g);
  assert.is(out.map((p) => p.text).join(""), text);
  for (const p of out) assert.not.match(p.text, "\uFFFD");
  // and with a stop string that is inside the text
  const g2 = new Generation(scripted(ids), [tk.bosTokenId], { maxNewTokens: ids.length, stop: ["jury"] }, tk.eosTokenId, tk.createDecodeStream());
  await collect(g2);
  assert.is(g2.result.text, "Café naïve 日本語 🙂 ∑ x² The ");
});

test("a generation iterates once; its result is there only after it finished", async () => {
  const g = new Generation(scripted([4]), [1], { maxNewTokens: 1 }, null, null);
  assert.throws(() => g.result, /before the generation finished/);
  await g.complete();
  try {
    await g.complete();
    assert.unreachable();
  } catch (e) {
    assert.match(e.message, "only once");
  }
});

test.run();
