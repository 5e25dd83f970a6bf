// Builds runtime Models for tests from a fixture folder and chosen engines
// (real ones or the doubles of flaky-engine.mjs), bypassing loadModel's
// device probing so that every path can be forced.
import { join } from "node:path";
import { openCheckpoint } from "../../dist/model/checkpoint.js";
import { createReferenceEngine } from "../../dist/reference/engine.js";
import { modelFingerprint } from "../../dist/runtime/fingerprint.js";
import { Model } from "../../dist/runtime/model.js";
import { FIXTURES_DIR } from "./fixtures.mjs";

/** The fixture's weights, its fingerprint and a reference engine on them. */
export async function openFixture(name) {
  const source = await openCheckpoint(join(FIXTURES_DIR, name));
  const reference = await createReferenceEngine(source);
  return { source, reference, fingerprint: await modelFingerprint(source) };
}

/**
 * A Model over `engines`. options: policy {prefill, decode}, costs (a
 * CostTable), prefillChunk, journalLimit, makeCpuEngine. Warnings are collected in
 * model.warnings.
 */
export function modelWith(fx, engines, options = {}) {
  const warnings = [];
  const model = new Model({
    config: fx.source.config,
    engines,
    tokenizer: options.tokenizer ?? null,
    fingerprint: fx.fingerprint,
    policy: options.policy,
    costs: options.costs ?? null,
    prefillChunk: options.prefillChunk,
    journalLimit: options.journalLimit,
    makeCpuEngine: options.makeCpuEngine ?? (async () => fx.reference),
    onWarning: (m) => warnings.push(m),
  });
  model.warnings = warnings;
  return model;
}
