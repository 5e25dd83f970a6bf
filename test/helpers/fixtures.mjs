// Loads the PyTorch-made fixtures of test/fixtures/<name>/ (format in
// test/fixtures/README.md) for any engine's tests:
//
//   import { listFixtures, loadFixture, openFixtureModel, logitsError, stateError } from "./helpers/fixtures.mjs";
//   for (const name of listFixtures()) {
//     const fx = loadFixture(name);                  // { name, dir, description, config, cases }
//     const source = await openFixtureModel(fx);     // a WeightSource (openCheckpoint of the folder)
//     for (const c of fx.cases) {                    // { index, tokens, nll, logits, state }
//       // c.logits: Float32Array per position ([vocab] each); c.state: a ModelState
//       logitsError(myLogits, c.logits) <= 1e-5;     // worst per-position max|err| / max|logit|
//       stateError(myState, c.state) <= 1e-5;        // worst per-tensor max|err| / max|value|
//     }
//     await source.close();
//   }
//
// expected.safetensors is read here with its own small F32-only parser, on
// purpose independent of src/io, so that a loader bug cannot hide itself.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const FIXTURES_DIR = fileURLToPath(new URL("../fixtures/", import.meta.url));

/** Names of the model fixtures (folders with an expected.json and a config.json), sorted. */
export function listFixtures() {
  return readdirSync(FIXTURES_DIR, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .filter((name) => existsSync(join(FIXTURES_DIR, name, "expected.json")) && existsSync(join(FIXTURES_DIR, name, "config.json")))
    .sort();
}

/** Every tensor of an all-F32 safetensors file: Map name -> { shape, data: Float32Array }. */
export function readF32Safetensors(path) {
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8"));
  const dataStart = 8 + headerLength;
  const tensors = new Map();
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    if (info.dtype !== "F32") throw new Error(`${path}: ${name} is ${info.dtype}, expected F32`);
    const [begin, end] = info.data_offsets;
    const copy = bytes.subarray(dataStart + begin, dataStart + end).slice(); // aligned copy
    tensors.set(name, { shape: info.shape, data: new Float32Array(copy.buffer, copy.byteOffset, (end - begin) / 4) });
  }
  return tensors;
}

/** Splits [rows * cols] into rows Float32Arrays. */
function rowsOf(tensor) {
  const [rows, cols] = tensor.shape;
  return Array.from({ length: rows }, (_, r) => tensor.data.subarray(r * cols, (r + 1) * cols));
}

/** A fixture folder: its config, description and cases with the expected logits and final state. */
export function loadFixture(name) {
  const dir = join(FIXTURES_DIR, name);
  const expected = JSON.parse(readFileSync(join(dir, "expected.json"), "utf8"));
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  const tensors = readF32Safetensors(join(dir, "expected.safetensors"));
  const need = (key) => {
    const t = tensors.get(key);
    if (!t) throw new Error(`${name}/expected.safetensors has no ${key}`);
    return t;
  };
  const cases = expected.cases.map((c, index) => {
    const layers = [];
    for (let l = 0; tensors.has(`${c.state}.layer${l}.S`); l++)
      layers.push({ S: need(`${c.state}.layer${l}.S`).data, conv: need(`${c.state}.layer${l}.conv`).data });
    return { index, tokens: c.tokens, nll: c.nll, logits: rowsOf(need(c.logits)), state: { position: c.tokens.length, layers } };
  });
  return { name, dir, description: expected.description, config, cases };
}

/** The fixture's model as a WeightSource, through the package's own checkpoint loader. */
export async function openFixtureModel(fixture) {
  const { openCheckpoint } = await import("../../dist/model/checkpoint.js");
  return openCheckpoint(fixture.dir);
}

/** max |actual - expected| / max |expected| (the absolute error when expected is all zero). */
export function relativeError(actual, expected) {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != expected ${expected.length}`);
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    maxErr = Number.isNaN(err) ? Infinity : Math.max(maxErr, err);
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  return maxRef > 0 ? maxErr / maxRef : maxErr;
}

/** Worst relativeError over positions (one row of logits per position). */
export function logitsError(actualRows, expectedRows) {
  if (actualRows.length !== expectedRows.length) throw new Error(`${actualRows.length} positions != expected ${expectedRows.length}`);
  return actualRows.reduce((worst, row, t) => Math.max(worst, relativeError(row, expectedRows[t])), 0);
}

/** Worst relativeError over the state's tensors (S and conv of every layer). */
export function stateError(actual, expected) {
  if (actual.layers.length !== expected.layers.length) throw new Error(`${actual.layers.length} layers != expected ${expected.layers.length}`);
  return actual.layers.reduce(
    (worst, layer, l) => Math.max(worst, relativeError(layer.S, expected.layers[l].S), relativeError(layer.conv, expected.layers[l].conv)),
    0,
  );
}
