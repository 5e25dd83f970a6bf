// `metala eval --device webgpu` end to end: the CLI's likelihood of a fixture
// case equals the PyTorch one, and prefill on the GPU + decode on the CPU
// reference hands the state over without changing it. `metala bench --device
// webgpu --json`: its fields and the relations between them (no timing
// asserted).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { gpuOrSkip } from "./gpu-support.mjs";
import { loadFixture } from "./helpers/fixtures.mjs";

const BIN = fileURLToPath(new URL("../bin/metala.js", import.meta.url));

function evalJson(args) {
  // gpu-support.mjs has set VK_ICD_FILENAMES (SwiftShader) in this process; the child inherits it
  return JSON.parse(execFileSync(process.execPath, [BIN, "eval", ...args, "--json"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }));
}

test("metala eval --device webgpu: the nll of the PyTorch fixture", async () => {
  if (!(await gpuOrSkip())) return;
  const fx = loadFixture("tiny-f32");
  const c = fx.cases.find((x) => x.tokens.length === 65);
  const r = evalJson(["--model", fx.dir, "--tokens", c.tokens.join(","), "--device", "webgpu"]);
  assert.is(r.tokens, 65);
  assert.ok(Math.abs(r.nll - c.nll) < 1e-4, `nll ${r.nll} vs ${c.nll}`);
});

test("metala eval: prefill on webgpu, decode on the reference engine (the state crosses engines)", async () => {
  if (!(await gpuOrSkip())) return;
  const fx = loadFixture("tiny-f32");
  const c = fx.cases.find((x) => x.tokens.length === 65);
  const r = evalJson(["--model", fx.dir, "--tokens", c.tokens.join(","), "--prefill-device", "webgpu", "--decode-device", "reference", "--prefill-tokens", "40"]);
  assert.ok(Math.abs(r.nll - c.nll) < 1e-4, `nll ${r.nll} vs ${c.nll}`);
});

test("metala bench --device webgpu --json: decode against the bandwidth roofline, prefill against the multiply-add peak", async () => {
  if (!(await gpuOrSkip())) return;
  const dir = fileURLToPath(new URL("fixtures/bf16-untied", import.meta.url));
  const args = [BIN, "bench", "--model", dir, "--device", "webgpu", "--prompt-tokens", "20", "--decode-tokens", "3", "--repeats", "1", "--json"];
  const j = JSON.parse(execFileSync(process.execPath, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }));
  assert.is(j.device, "webgpu");
  assert.is(j.dtype, "f32");
  for (const k of ["prefill_tokens_per_s", "decode_tokens_per_s", "mem_bandwidth_gb_s", "decode_roofline_tokens_per_s", "decode_vs_roofline", "mac_rate_gmac_s", "prefill_roofline_tokens_per_s", "prefill_vs_roofline", "prefill_vs_decode_limit"])
    assert.ok(typeof j[k] === "number" && j[k] > 0, `${k} = ${j[k]}`);
  // d 96, 2 layers, glu 160: every element of the layers' products once per prompt token (q|k_gate|v|g is 3d rows)
  const d = 96, glu = 160, layers = 2;
  assert.is(j.macs_per_prompt_token, layers * (3 * d * d + d * d + 2 * glu * d + d * glu));
  const near = (a, b, what) => assert.ok(Math.abs(a - b) <= 0.01 * Math.abs(b) + 0.01, `${what}: ${a} vs ${b}`);
  near(j.prefill_roofline_tokens_per_s, (j.mac_rate_gmac_s * 1e9) / j.macs_per_prompt_token, "prefill_roofline_tokens_per_s");
  near(j.prefill_vs_roofline, j.prefill_tokens_per_s / j.prefill_roofline_tokens_per_s, "prefill_vs_roofline");
  near(j.decode_roofline_tokens_per_s, (j.mem_bandwidth_gb_s * 1e9) / j.weight_bytes_per_token, "decode_roofline_tokens_per_s");
});

test.run();
