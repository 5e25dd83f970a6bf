// The reference engine against the fixtures of the independent PyTorch
// implementation (tools/metala_torch.py, float64): for every fixture and
// case, the logits at every position within 1e-5 relative (max abs error /
// max abs logit, per position), the final state within 1e-5 relative, and
// the mean NLL within 1e-6 — through the chunked prefill, the recurrent
// prefill, and a prefill followed by step-by-step decode.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createReferenceEngine } from "../dist/reference/engine.js";
import { nll } from "../dist/reference/ops.js";
import { listFixtures, loadFixture, logitsError, openFixtureModel, stateError } from "./helpers/fixtures.mjs";

const LOGITS_TOL = 1e-5;
const STATE_TOL = 1e-5;
const NLL_TOL = 1e-6;

const fixtures = listFixtures();

test("the five model fixtures are present", () => {
  for (const name of ["tiny-f32", "bf16-untied", "strong-decay", "sharded-f16", "layernorm-gelu"]) assert.ok(fixtures.includes(name), `missing test/fixtures/${name}`);
});

/** Checks one case's f64 logits (all positions) and final state against the fixture. */
async function check(label, c, logits, session) {
  const le = logitsError(logits, c.logits);
  assert.ok(le <= LOGITS_TOL, `${label}: logits relative error ${le}`);
  const se = stateError(await session.exportState(), c.state);
  assert.ok(se <= STATE_TOL, `${label}: state relative error ${se}`);
  const got = nll(logits, c.tokens);
  if (c.nll === null) assert.is(got, null, `${label}: nll`);
  else assert.ok(Math.abs(got - c.nll) <= NLL_TOL, `${label}: nll ${got} vs ${c.nll}`);
}

for (const name of fixtures)
  test(`${name}: chunked prefill, recurrent prefill, and prefill + decode match PyTorch`, async () => {
    const fx = loadFixture(name);
    assert.is(fx.cases.length, 8);
    const source = await openFixtureModel(fx);
    try {
      const chunked = await createReferenceEngine(source);
      const recurrent = await createReferenceEngine(source, { gla: "recurrent" });
      for (const c of fx.cases) {
        const T = c.tokens.length;
        let s = chunked.createSession();
        await check(`case ${c.index} (T=${T}) chunked`, c, s.prefillF64(c.tokens, "all"), s);

        s = recurrent.createSession();
        await check(`case ${c.index} (T=${T}) recurrent`, c, s.prefillF64(c.tokens, "all"), s);

        // prefill to the middle (crossing a chunk boundary when T > 128), then decode
        const split = Math.floor(T / 2);
        s = chunked.createSession();
        const logits = s.prefillF64(c.tokens.slice(0, split), "all");
        for (const t of c.tokens.slice(split)) logits.push(s.stepF64(t));
        await check(`case ${c.index} (T=${T}) prefill ${split} + decode`, c, logits, s);
      }
    } finally {
      await source.close();
    }
  });

test.run();
