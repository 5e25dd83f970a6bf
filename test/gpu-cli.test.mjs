// `metala eval --device webgpu` end to end: the CLI's likelihood of a fixture
// case equals the PyTorch one, and prefill on the GPU + decode on the CPU
// reference hands the state over without changing it.
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

test.run();
