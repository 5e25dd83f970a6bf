// The Strassen form of the float mat-mat (src/cpu/matmat.ts queueStrassen on
// the kernels of assembly/matmat.ts): against a double-precision product
// computed here, on shapes at and past its threshold with odd token and row
// counts (the lower halves one short), accumulating or not, f32 and f16,
// one and two threads; which products take it; and a model whose larger
// layer products take it against the reference engine.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { wasmFeatures } from "../dist/cpu/features.js";
import { FMT } from "../dist/cpu/kernels.js";
import { matrixBytes } from "../dist/cpu/layout.js";
import { queueStrassen, strassenFits, STRASSEN_MIN } from "../dist/cpu/matmat.js";
import * as mm from "../dist/cpu/matmat-layout.js";
import { createWasmEngine } from "../dist/cpu/engine.js";
import { createReferenceEngine } from "../dist/reference/engine.js";
import { logitsError } from "./helpers/fixtures.mjs";
import { randomModel, seededRandom, uniform } from "./helpers/random-model.mjs";
import { withKernelPool } from "./helpers/wasm-kernels.mjs";

const features = await wasmFeatures();
const withPool = (threads, fn) => withKernelPool(threads, 256, fn);

const rand = seededRandom(28);

/**
 * Y (+)= X W^T as a Strassen product; returns max |Y - exact| / max |exact|
 * over the product's columns, and whether Y's columns past `rows` (ldy is
 * rows + 3) and the row past its T kept their values.
 */
async function strassenError(dtype, T, rows, cols, accumulate, threads) {
  // f16: multiples of 2^-10 in [-1, 1], which f16 stores exactly
  const W = Float32Array.from(uniform(rand, rows * cols, 1), (v) => (dtype === "f16" ? Math.round(v * 1024) / 1024 : v));
  const X = Float32Array.from(uniform(rand, T * cols, 1));
  const ldy = rows + 3;
  const Y0 = Float32Array.from(uniform(rand, (T + 1) * ldy, 4)); // a row past Y, to stay as it is
  let result;
  await withPool(threads, async ({ k, pool, buf, alloc }) => {
    // a NaN row past W and past X: the lower halves' missing row and token must be read as zeros, not from there
    const w = alloc(matrixBytes(dtype, rows + 1, cols));
    new Uint8Array(buf, w, matrixBytes(dtype, rows + 1, cols)).fill(255);
    if (dtype === "f32") new Float32Array(buf, w, W.length).set(W);
    else {
      const src = alloc(4 * W.length);
      new Float32Array(buf, src, W.length).set(W);
      k.quantizeRows(FMT[dtype], src, w, cols, 0, rows, 0);
    }
    const x = alloc(4 * (X.length + cols)), y = alloc(4 * Y0.length);
    new Float32Array(buf, x, X.length + cols).fill(NaN).set(X);
    new Float32Array(buf, y, Y0.length).set(Y0);
    const b = {
      tokens: alloc(mm.strassenTokensBytes(T, cols)),
      scratch: alloc(threads * mm.matMatScratchBytes(FMT[dtype] | mm.PREPARED, T, cols)),
      strassen: alloc(threads * mm.strassenTempsBytes(T)),
    };
    queueStrassen(pool, { dtype, fmt: FMT[dtype], ptr: w, rows, cols }, x, y, ldy, T, accumulate, b);
    pool.flush();
    const Y = new Float32Array(buf, y, Y0.length);
    let err = 0, scale = 0, kept = true;
    for (let t = 0; t < T; t++) {
      for (let r = 0; r < rows; r++) {
        let e = 0;
        for (let c = 0; c < cols; c++) e += X[t * cols + c] * W[r * cols + c];
        err = Math.max(err, Math.abs(Y[t * ldy + r] - (accumulate ? Y0[t * ldy + r] : 0) - e));
        scale = Math.max(scale, Math.abs(e));
      }
      for (let r = rows; r < ldy; r++) kept &&= Y[t * ldy + r] === Y0[t * ldy + r];
    }
    for (let i = T * ldy; i < Y0.length; i++) kept &&= Y[i] === Y0[i];
    result = { err: err / scale, kept };
  });
  return result;
}

// Strassen's error grows with the sums of quarters it multiplies (up to 4 terms a side): measured 0.9-1.5e-6
// of the largest output on these shapes; a wrong sign or quarter errs by the order of the output itself
const TOL = 3e-6;

for (const dtype of ["f32", "f16"])
  for (const [T, rows, cols] of [
    [128, 512, 256], // STRASSEN_MIN
    [301, 527, 272], // odd tokens and rows, halves of 136 columns: the lower halves one token / one row short, a panel of 4 rows, tile remainders
  ])
    for (const threads of [1, 2])
      test(`Strassen ${dtype} ${T} tokens x [${rows}, ${cols}], ${threads} thread(s), accumulating and not = the exact product`, async () => {
        if (threads > 1 && !features.threads) return;
        for (const accumulate of [false, true]) {
          const { err, kept } = await strassenError(dtype, T, rows, cols, accumulate, threads);
          assert.ok(err <= TOL, `accumulate ${accumulate}: error ${err}`);
          assert.ok(kept, "columns past the product's rows or the row past its tokens were written");
        }
      });

test("strassenFits: f32 and f16 from STRASSEN_MIN's tokens, rows and columns on, columns a multiple of 16; not q8/q4", () => {
  const m = (dtype, rows, cols) => ({ dtype, fmt: FMT[dtype], ptr: 0, rows, cols });
  const { tokens, rows, cols } = STRASSEN_MIN;
  assert.ok(strassenFits(m("f32", rows, cols), tokens));
  assert.ok(strassenFits(m("f16", rows + 1, cols + 16), tokens + 1));
  assert.not.ok(strassenFits(m("f32", rows, cols), tokens - 1));
  assert.not.ok(strassenFits(m("f32", rows - 1, cols), tokens));
  assert.not.ok(strassenFits(m("f32", rows, cols - 16), tokens));
  assert.not.ok(strassenFits(m("f32", rows, cols + 8), tokens));
  assert.not.ok(strassenFits(m("q8", rows, cols), tokens));
  assert.not.ok(strassenFits(m("q4", rows, cols), tokens));
});

test("the host's Strassen temps' size (src/cpu/matmat-layout.ts) = the kernels' own", async () => {
  await withPool(1, async ({ k }) => {
    for (const T of [1, 2, 255, 256, 301, 512]) assert.is(mm.strassenTempsBytes(T), Number(k.strassenTempsBytes(T)), `T ${T}`);
  });
});

// d 256, GLU 1024 and a prompt of 301: the q|a|v|g [768, 256] and l1|l2 [2048, 256] products take Strassen, out
// [256, 256] and l3 [256, 1024] the plain product. Measured error ~1e-6 of the logits, far inside the engine's f32
// tolerance (spec metala-model.md §6: 1e-4 relative), which this holds it to.
test("a model whose q|a|v|g and l1|l2 products take Strassen: prefill logits at every position = the reference engine, 1 and 2 threads", async () => {
  const config = { decoder_embed_dim: 256, decoder_layers: 2, decoder_attention_heads: 4, glu_dim: 1024, vocab_size: 64 };
  const T = 301;
  const fits = ([rows, cols]) => strassenFits({ dtype: "f32", rows, cols }, T);
  assert.ok([[768, 256], [2048, 256]].every(fits) && ![[256, 256], [256, 1024]].some(fits));
  const source = randomModel(config, { seed: 28 });
  const tokens = Array.from({ length: T }, (_, i) => (i * 5 + 1) % config.vocab_size);
  const reference = await createReferenceEngine(source);
  const expected = await reference.createSession().prefill(tokens, "all");
  await reference.dispose();
  for (const threads of [1, 2]) {
    const engine = await createWasmEngine(source, { threads });
    try {
      const err = logitsError(await engine.createSession().prefill(tokens, "all"), expected);
      assert.ok(err <= 1e-4, `${threads} thread(s): logits error ${err}`);
    } finally {
      await engine.dispose();
    }
  }
});

test.run();
