import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { generateMqar } from "../dist/mqar/generate.js";
import { scoreMqar } from "../dist/mqar/score.js";
import { digestMqarSet, mqarSetToJson } from "../dist/mqar/set-file.js";
import { openCheckpoint } from "../dist/model/checkpoint.js";
import { createReferenceEngine } from "../dist/reference/engine.js";
import { createEngine } from "../dist/cli/common.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const modelDir = readdirSync(join(root, "models"))
  .filter((n) => n.startsWith("mqar-"))
  .map((n) => join(root, "models", n))[0];
const TASK = { vocabSize: 8192, seqLen: 512, numPairs: 64, powerA: 0.01 };
/** Examples scored in CI: few on the reference engine (the slow, obvious one), more on wasm. */
const CI_EXAMPLES = { reference: 6, wasm: 40 };

function metala(...args) {
  const r = spawnSync(process.execPath, [join(root, "bin", "metala.js"), ...args], { encoding: "utf8", timeout: 600_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("every example has Zoology's layout: pairs, then each key queried once, at even offsets", () => {
  const { numPairs: N, vocabSize: V, seqLen: L } = TASK;
  for (const ex of generateMqar(TASK, 20, 7).examples) {
    assert.is(ex.inputs.length, L);
    const valueOf = new Map();
    for (let i = 0; i < N; i++) {
      const k = ex.inputs[2 * i];
      const v = ex.inputs[2 * i + 1];
      assert.ok(k >= 1 && k < V / 2, `key ${k} in the first half`);
      assert.ok(v >= V / 2 && v < V, `value ${v} in the second half`);
      assert.not.ok(valueOf.has(k), "keys distinct");
      valueOf.set(k, v);
    }
    assert.is(new Set(valueOf.values()).size, N, "values distinct");
    assert.is(ex.queries.length, N);
    const asked = new Set();
    for (const q of ex.queries) {
      assert.ok(q.position >= 2 * N && q.position < L && (q.position - 2 * N) % 2 === 0);
      const key = ex.inputs[q.position];
      assert.is(q.value, valueOf.get(key), "the expected value is the key's pair");
      asked.add(key);
    }
    assert.is(asked.size, N, "each key asked once");
    for (const t of ex.inputs) assert.ok(Number.isInteger(t) && t >= 0 && t < V);
  }
});

test("gaps follow the power law: short gaps far likelier than long ones", () => {
  const { numPairs: N } = TASK;
  const space = (TASK.seqLen - 2 * N) / 2; // 192 slots
  const counts = new Array(6).fill(0);
  for (const ex of generateMqar(TASK, 300, 3).examples)
    for (const q of ex.queries) counts[Math.floor(((q.position - 2 * N) / 2) / (space / 6))]++;
  // uniform gaps would put 1/6 of the queries in each sixth
  assert.ok(counts[0] > 2 * counts[5], `first sixth ${counts[0]} vs last ${counts[5]}`);
  for (let i = 1; i < 6; i++) assert.ok(counts[i - 1] >= counts[i], `counts fall: ${counts}`);
});

test("a seed gives the same set every time; the first n examples do not depend on how many follow", async () => {
  const a = generateMqar(TASK, 30, 11);
  const b = generateMqar(TASK, 30, 11);
  assert.is(await digestMqarSet(a), await digestMqarSet(b));
  assert.is.not(await digestMqarSet(a), await digestMqarSet(generateMqar(TASK, 30, 12)));
  const short = generateMqar(TASK, 5, 11);
  assert.is(await digestMqarSet(short), await digestMqarSet({ ...a, examples: a.examples.slice(0, 5) }));
  const json = await mqarSetToJson(short);
  assert.equal(json.examples[2].inputs, Array.from(short.examples[2].inputs));
  assert.equal(json.task, { vocab_size: 8192, seq_len: 512, num_kv_pairs: 64, power_a: 0.01 });
});

test("impossible tasks are refused with one line", () => {
  assert.throws(() => generateMqar({ ...TASK, numPairs: 200 }, 1, 0), /pairs need a sequence length/);
  assert.throws(() => generateMqar({ ...TASK, seqLen: 511 }, 1, 0), /must be even/);
  const r = metala("mqar", "--write-set", "/tmp/x.json", "--vocab", "8192");
  assert.is(r.code, 2);
  assert.match(r.stderr, /--seq-len is required/);
});

test("the shipped MQAR model: the generator still makes the set PyTorch scored", async () => {
  assert.ok(modelDir && existsSync(join(modelDir, "reference.json")), "models/mqar-*/reference.json");
  const ref = JSON.parse(readFileSync(join(modelDir, "reference.json"), "utf8"));
  const task = { vocabSize: ref.task.vocab_size, seqLen: ref.task.seq_len, numPairs: ref.task.num_kv_pairs, powerA: ref.task.power_a };
  const set = generateMqar(task, ref.pytorch.examples, ref.seed);
  assert.is(await digestMqarSet(set), ref.sha256);
});

for (const kind of ["reference", "wasm"])
  test(`the shipped MQAR model: the ${kind} engine gets exactly PyTorch's per-example counts`, async () => {
    const ref = JSON.parse(readFileSync(join(modelDir, "reference.json"), "utf8"));
    const task = { vocabSize: ref.task.vocab_size, seqLen: ref.task.seq_len, numPairs: ref.task.num_kv_pairs, powerA: ref.task.power_a };
    const set = generateMqar(task, CI_EXAMPLES[kind], ref.seed);
    const source = await openCheckpoint(modelDir);
    const engine = kind === "reference" ? await createReferenceEngine(source) : await createEngine(kind, source, { dtype: "f32" });
    try {
      const score = await scoreMqar(engine, set);
      assert.equal(score.perExample, ref.pytorch.per_example.slice(0, CI_EXAMPLES[kind]));
    } finally {
      await engine.dispose();
      await source.close();
    }
  });

test("metala mqar --json reports the same count as PyTorch on the same examples", () => {
  const ref = JSON.parse(readFileSync(join(modelDir, "reference.json"), "utf8"));
  const r = metala("mqar", "--model", modelDir, "--examples", "2", "--device", "reference", "--json");
  assert.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.is(out.correct, ref.pytorch.per_example[0] + ref.pytorch.per_example[1]);
  assert.is(out.total, 2 * ref.task.num_kv_pairs);
});

test.run();
