// `metala bench --device wasm --json` on a tiny fixture: the fields the
// architecture promises, the compute roofline's, and the relations between
// them (no timing asserted).
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bench = (...args) => spawnSync(process.execPath, [join(root, "bin", "metala.js"), "bench", ...args], { encoding: "utf8", timeout: 120_000 });

test("bench --json prints one object with the promised fields, consistent with each other", () => {
  const r = bench("--model", join(root, "test", "fixtures", "bf16-untied"), "--dtype", "q8", "--threads", "2", "--prompt-tokens", "20", "--decode-tokens", "5", "--json");
  assert.is(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.is(j.device, "wasm");
  assert.is(j.dtype, "q8");
  assert.is(j.threads, 2);
  for (const k of ["prefill_tokens_per_s", "decode_tokens_per_s", "weight_bytes_per_token", "mem_bandwidth_gb_s", "decode_roofline_tokens_per_s", "decode_vs_roofline", "peak_rss_mb", "peak_rss_limit_mb"])
    assert.ok(typeof j[k] === "number" && j[k] > 0, `${k} = ${j[k]}`);
  // d 96, 2 layers, glu 160, vocab 300, untied: matrices of q8 rows (1.125 bytes per weight) plus f32 vectors
  const d = 96, glu = 160, vocab = 300, layers = 2;
  const q8 = (rows, cols) => rows * (cols + cols / 8);
  const matrices = layers * (q8(3 * d, d) + q8(d, d) + q8(2 * glu, d) + q8(d, glu)) + q8(vocab, d) + q8(1, d);
  const vectors = layers * 4 * (d + 4 * d + d / 2); // g bias, conv, aug_balance (no GLU biases, no LayerNorm here)
  assert.is(j.weight_bytes_per_token, matrices + vectors);
  const roofline = (j.mem_bandwidth_gb_s * 1e9) / j.weight_bytes_per_token;
  assert.ok(Math.abs(j.decode_roofline_tokens_per_s - roofline) <= 0.01 * roofline + 0.01);
  assert.ok(Math.abs(j.decode_vs_roofline - j.decode_tokens_per_s / j.decode_roofline_tokens_per_s) <= 0.01);
  assert.ok(Math.abs(j.peak_rss_limit_mb - ((1.2 * j.weight_bytes) / 1e6 + 100)) <= 0.1);

  // the prefill's compute roofline: every element of the layers' matrices (q|k_gate|v|g is 2 dk + 2 d = 3d rows, dk = d/2) once per prompt token
  for (const k of ["mac_rate_gmac_s", "prefill_roofline_tokens_per_s", "prefill_vs_roofline", "prefill_vs_decode_limit"])
    assert.ok(typeof j[k] === "number" && j[k] > 0, `${k} = ${j[k]}`);
  const macs = layers * (3 * d * d + d * d + 2 * glu * d + d * glu);
  assert.is(j.macs_per_prompt_token, macs);
  const near = (a, b, what) => assert.ok(Math.abs(a - b) <= 0.01 * Math.abs(b) + 0.01, `${what}: ${a} vs ${b}`);
  near(j.prefill_roofline_tokens_per_s, (j.mac_rate_gmac_s * 1e9) / macs, "prefill_roofline_tokens_per_s");
  near(j.prefill_vs_roofline, j.prefill_tokens_per_s / j.prefill_roofline_tokens_per_s, "prefill_vs_roofline");
  near(j.prefill_vs_decode_limit, j.prefill_roofline_tokens_per_s / j.decode_roofline_tokens_per_s, "prefill_vs_decode_limit");
});

test("bench's text output has one line for the compute roofline", () => {
  const r = bench("--model", join(root, "test", "fixtures", "bf16-untied"), "--dtype", "q4", "--threads", "1", "--prompt-tokens", "8", "--decode-tokens", "2", "--repeats", "1");
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.split("\n").filter((l) => l.startsWith("compute "));
  assert.is(lines.length, 1, r.stdout);
  assert.match(lines[0], /^compute  [\d.]+ GMAC\/s peak, 0\.2M MACs per prompt token: prefill at [\d.]+% of the roofline [\d.]+ tok\/s; prefill\/decode at most [\d.]+x here$/);
});

test("bench rejects bad flags with one line and exit 2", () => {
  const r = bench("--dtype", "q5");
  assert.is(r.status, 2);
  assert.match(r.stderr, /--dtype must be one of f32, f16, q8, q4/);
  assert.is(r.stderr.trim().split("\n").length, 1);
});

test.run();
