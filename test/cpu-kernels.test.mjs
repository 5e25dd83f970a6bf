// Every wasm kernel (assembly/) against the reference op of the same name
// (src/reference/ops.ts, float64) on seeded random inputs. Quantized products
// are held to error bounds derived from each block's quantization step, so
// that a wrong layout or a wrong block scale fails while rounding passes.
//
// Runs on the build this Node validates (SIMD128 on plain Node 20); the last
// test re-runs this file in a child Node with relaxed SIMD enabled, so both
// builds are checked.
import { test } from "uvu";
import { passesWithRelaxedSimd } from "./helpers/relaxed-rerun.mjs";
import * as assert from "uvu/assert";
import { FMT } from "../dist/cpu/kernels.js";
import { matrixBytes, inputBytes } from "../dist/cpu/layout.js";
import * as mm from "../dist/cpu/matmat-layout.js";
import * as ref from "../dist/reference/ops.js";
import { seededRandom, uniform } from "./helpers/random-model.mjs";
import { kernelHarness } from "./helpers/wasm-kernels.mjs";

const { k, build, buf, alloc, put, get } = await kernelHarness(256);
if (process.env.METALA_TEST_SAY_BUILD) console.log(`kernels build: ${build}`);
/** Stores W ([rows, cols] f32) in layout `dtype` with the load-time converter (quantizeRows, split over two calls). */
function storeMatrix(dtype, W, rows, cols) {
  const wp = alloc(matrixBytes(dtype, rows, cols));
  if (dtype === "f32") new Float32Array(buf, wp, rows * cols).set(W);
  else {
    const src = put(W);
    k.quantizeRows(FMT[dtype], src, wp, cols, 0, 3, 0);
    k.quantizeRows(FMT[dtype], src, wp, cols, 3, rows, 1);
  }
  return wp;
}
/** The matrix stored at wp as the kernels see it (dequantizeRows of every row), f32. */
function dequantized(dtype, wp, rows, cols) {
  const deq = alloc(4 * rows * cols);
  k.dequantizeRows(FMT[dtype], wp, cols, 0, rows, deq);
  return new Float32Array(get(deq, rows * cols));
}
const rand = seededRandom(12345);
const f64 = (n, scale = 1) => Float64Array.from(uniform(rand, n, scale));
const maxAbs = (a) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
function close(actual, expected, tol, what) {
  const scale = Math.max(1, maxAbs(expected));
  for (let i = 0; i < expected.length; i++)
    if (!(Math.abs(actual[i] - expected[i]) <= tol * scale)) assert.unreachable(`${what}[${i}]: ${actual[i]} vs ${expected[i]} (tol ${tol * scale})`);
}

const MATVEC = { f32: "matVecF32", f16: "matVecF16", q8: "matVecQ8", q4: "matVecQ4" };

/** Per-weight bound of the storage error of layout `dtype` (independent of the kernels' own decode). */
function weightErrorBound(dtype, W, rows, cols) {
  const e = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let b = 0; b < cols / 32; b++) {
      let m = 0;
      for (let i = 0; i < 32; i++) m = Math.max(m, Math.abs(W[r * cols + b * 32 + i]));
      for (let i = 0; i < 32; i++) {
        const j = r * cols + b * 32 + i;
        // f16: half an ulp (2^-11 relative), all of it below 2^-14 (f16 subnormals are stored as 0); q8: half a step of max/127, q4: one step of max/8 (the far end is clamped)
        const f16 = Math.abs(W[j]) < 2 ** -14 ? Math.abs(W[j]) : Math.abs(W[j]) * 2 ** -11;
        e[j] = dtype === "f32" ? 0 : dtype === "f16" ? f16 : dtype === "q8" ? m / 254 : m / 8;
      }
    }
  return e;
}

/** Per-row bounds of |W x - stored product| from the weight storage error and, for q8/q4, the input's own quantization to max/127 per block. */
function productBounds(dtype, W, rows, cols, x, expected) {
  const ew = weightErrorBound(dtype, W, rows, cols);
  const quantized = dtype === "q8" || dtype === "q4";
  return Array.from({ length: rows }, (_, r) => {
    let bound = 1e-5 * (1 + Math.abs(expected[r]));
    for (let c = 0; c < cols; c++) {
      let ex = 0;
      if (quantized) {
        let m = 0;
        for (let i = 0; i < 32; i++) m = Math.max(m, Math.abs(x[(c & ~31) + i]));
        ex = m / 254;
      }
      bound += Math.abs(x[c]) * ew[r * cols + c] + (Math.abs(W[r * cols + c]) + ew[r * cols + c]) * ex;
    }
    return bound;
  });
}


/**
 * How far the integer mat-mat may be from the exact product for weight row r
 * of D: each token element is rounded to a step of (its 32-block's max |x|) /
 * 32767 (i16 tokens) or / 127 (i8 tokens, I8_INPUT), so it is at most half a
 * step off.
 */
function tokenRoundingBound(x, D, r, cols, levels) {
  let bound = 0;
  for (let b = 0; b < cols; b += 32) {
    let m = 0, wsum = 0;
    for (let i = b; i < b + 32; i++) {
      m = Math.max(m, Math.abs(x[i]));
      wsum += Math.abs(D[r * cols + i]);
    }
    bound += (m / levels / 2) * wsum;
  }
  return bound;
}

/** A random rows x cols matrix stored as dtype and an input vector as a one-token product reads it (quantized for q8 / q4). */
function productOperands(dtype, rows, cols) {
  const W = uniform(rand, rows * cols, 1);
  const x = f64(cols, 2);
  const wp = storeMatrix(dtype, W, rows, cols);
  let xp = put(x);
  const quantized = dtype === "q8" || dtype === "q4";
  if (quantized) {
    const q = alloc(inputBytes(cols));
    k.quantizeInput(FMT[dtype], xp, q, cols);
    xp = q;
  }
  return { W, x, wp, xp, quantized };
}

for (const dtype of ["f32", "f16", "q8", "q4"]) {
  test(`${MATVEC[dtype]} = reference matVec within the ${dtype} storage error (${build})`, () => {
    // row counts around the quantized kernels' four streams of quads (16 rows a step) and their 4-row remainder
    for (const [rows, cols] of [[4, 32], [13, 96], [37, 160], [70, 96], [166, 64], [300, 32]]) {
      const { W, x, wp, xp, quantized } = productOperands(dtype, rows, cols);
      const yp = alloc(4 * rows);
      new Float32Array(buf, yp, rows).fill(0.5);
      // two calls over split row ranges (split at a multiple of 4, as the pool does), the second accumulating onto a first full product
      k[MATVEC[dtype]](wp, xp, yp, cols, 0, 0, rows, 0);
      const first = get(yp, rows);
      k[MATVEC[dtype]](wp, xp, yp, cols, 1, 0, 8, 0);
      k[MATVEC[dtype]](wp, xp, yp, cols, 1, 8, rows, 1);
      const second = get(yp, rows);
      const expected = ref.matVec(W, rows, cols, x);
      const bounds = productBounds(dtype, W, rows, cols, x, expected);
      for (let r = 0; r < rows; r++) {
        const bound = bounds[r];
        assert.ok(Math.abs(first[r] - expected[r]) <= bound, `${dtype} ${rows}x${cols} row ${r}: ${first[r]} vs ${expected[r]} (bound ${bound})`);
        assert.ok(Math.abs(second[r] - 2 * first[r]) <= 1e-5 * (1 + Math.abs(first[r])), `accumulate row ${r}`);
      }
    }
  });

  test(`dequantizeRows and matMat (${dtype}) = reference matVec per token`, () => {
    // rows 8..46 in one call: past the float path's block of 4 panels (32 rows); 14 tokens: a step of 12 and a rest
    const rows = 46, cols = 64, T = 14;
    const W = uniform(rand, rows * cols, 1);
    const wp = storeMatrix(dtype, W, rows, cols);
    const D = dequantized(dtype, wp, rows, cols);
    const ew = weightErrorBound(dtype, W, rows, cols);
    for (let i = 0; i < rows * cols; i++) assert.ok(Math.abs(D[i] - W[i]) <= ew[i] + 1e-7, `${dtype} weight ${i}: ${D[i]} vs ${W[i]}`);
    const X = f64(T * cols);
    const xp = put(X);
    const ldy = rows + 3;
    const yp = alloc(4 * T * ldy);
    const scratch = alloc(2 * Number(k.matMatScratchBytes(FMT[dtype], T, cols)));
    k.matMat(FMT[dtype], wp, xp, yp, cols, ldy, T, 0, scratch, 0, 8, 0);
    k.matMat(FMT[dtype], wp, xp, yp, cols, ldy, T, 0, scratch, 8, rows, 1);
    const Y = get(yp, T * ldy);
    for (let t = 0; t < T; t++) {
      const expected = ref.matVec(D, rows, cols, X.subarray(t * cols, (t + 1) * cols));
      close(Y.subarray(t * ldy, t * ldy + rows), expected, 1e-5, `matMat ${dtype} token ${t}`);
    }
  });

  if (dtype === "q8" || dtype === "q4")
    test(`matMat (${dtype}) on integers (INT_INPUT) = reference matVec per token, within the tokens' i16 rounding`, () => {
      // rows and tokens not multiples of the 4x4 tile, so the tails run too
      const rows = 22, cols = 96, T = 5, INT_INPUT = 16;
      const W = uniform(rand, rows * cols, 1);
      const wp = storeMatrix(dtype, W, rows, cols);
      const D = dequantized(dtype, wp, rows, cols);
      const X = f64(T * cols);
      const xp = put(X);
      const ldy = rows + 3;
      const yp = alloc(4 * T * ldy);
      const scratch = alloc(2 * Number(k.matMatScratchBytes(FMT[dtype] | INT_INPUT, T, cols)));
      k.matMat(FMT[dtype] | INT_INPUT, wp, xp, yp, cols, ldy, T, 0, scratch, 0, 9, 0);
      k.matMat(FMT[dtype] | INT_INPUT, wp, xp, yp, cols, ldy, T, 0, scratch, 9, rows, 1);
      const Y = get(yp, T * ldy);
      for (let t = 0; t < T; t++) {
        const x = X.subarray(t * cols, (t + 1) * cols);
        const expected = ref.matVec(D, rows, cols, x);
        for (let r = 0; r < rows; r++) {
          const bound = 1e-5 * (1 + Math.abs(expected[r])) + tokenRoundingBound(x, D, r, cols, 32767);
          const got = Y[t * ldy + r];
          assert.ok(Math.abs(got - expected[r]) <= bound, `${dtype} int token ${t} row ${r}: ${got} vs ${expected[r]} (bound ${bound})`);
        }
      }
    });
}

// The engine's prefill form: tokens laid out once by prepareTokens, then
// weight-row tiles of 8 taken by the threads in any order, accumulating into Y.
for (const dtype of ["f32", "f16", "q8", "q4"])
  test(`matMat (${dtype}) on prepareTokens' layout, row tiles in any order, accumulate = Y0 + reference matVec`, () => {
    // T = 9: two full groups of 4 tokens and a group of 1; 21 rows: a last tile of 5
    const rows = 21, cols = 64, T = 9, PREPARED = 32;
    const fmt = k.matMatFormat(FMT[dtype]);
    const W = uniform(rand, rows * cols, 1);
    const wp = storeMatrix(dtype, W, rows, cols);
    const D = dequantized(dtype, wp, rows, cols);
    const X = f64(T * cols);
    const xp = put(X);
    const ldy = rows + 2;
    const Y0 = f64(T * ldy);
    const yp = put(Y0);
    const tokens = alloc(Number(k.preparedBytes(fmt, T, cols)));
    k.prepareTokens(fmt, xp, cols, T, tokens);
    const scratch = alloc(2 * Number(k.matMatScratchBytes(fmt | PREPARED, T, cols)));
    for (const [r0, r1, tid] of [[16, 21, 1], [0, 8, 0], [8, 16, 1]]) k.matMat(fmt | PREPARED, wp, tokens, yp, cols, ldy, T, 1, scratch, r0, r1, tid);
    const Y = get(yp, T * ldy);
    for (let t = 0; t < T; t++) {
      const x = X.subarray(t * cols, (t + 1) * cols);
      const expected = ref.matVec(D, rows, cols, x);
      for (let r = 0; r < rows; r++) {
        const y0 = Math.fround(Y0[t * ldy + r]);
        const bound = 1e-5 * (1 + Math.abs(expected[r]) + Math.abs(y0)) + tokenRounding(fmt, x, D, r, cols);
        const got = Y[t * ldy + r];
        assert.ok(Math.abs(got - (y0 + expected[r])) <= bound, `${dtype} token ${t} row ${r}: ${got} vs ${y0 + expected[r]} (bound ${bound})`);
      }
      // the gap between rows and ldy is left alone
      assert.is(Y[t * ldy + rows], Math.fround(Y0[t * ldy + rows]), `${dtype} token ${t}: padding`);
    }
  });

/** The token rounding allowed to matMat's path `fmt`: none on floats, half an i16 or i8 step per element on integers. */
function tokenRounding(fmt, x, D, r, cols) {
  if (fmt & mm.I8_INPUT) return tokenRoundingBound(x, D, r, cols, 127);
  return fmt & mm.INT_INPUT ? tokenRoundingBound(x, D, r, cols, 32767) : 0;
}

// Every remainder of the 8-row x 4-token register tile: a last row tile of
// 1..8 rows after a full one, and 1..28 tokens (groups of 4 padded by
// repeating the last token; from 12 on, the relaxed build's float path runs
// 12 at a time as two 8x6 tiles, then the rest in 8x4), in the engine's
// form (prepared tokens).
for (const dtype of ["f32", "f16", "q8", "q4"])
  test(`matMat (${dtype}): every row and token remainder of the 8x4 (and 8x6) tile, rows past r1 untouched`, () => {
    const rows = 16, cols = 64, maxT = 28;
    const fmt = k.matMatFormat(FMT[dtype]);
    const W = uniform(rand, rows * cols, 1);
    const wp = storeMatrix(dtype, W, rows, cols);
    const D = dequantized(dtype, wp, rows, cols);
    const X = f64(maxT * cols);
    const xp = put(X);
    const ldy = rows + 1;
    const yp = alloc(4 * maxT * ldy);
    const tokens = alloc(mm.preparedBytes(fmt, maxT, cols));
    const scratch = alloc(2 * mm.matMatScratchBytes(fmt | mm.PREPARED, maxT, cols));
    const expected = Array.from({ length: maxT }, (_, t) => ref.matVec(D, rows, cols, X.subarray(t * cols, (t + 1) * cols)));
    for (let T = 1; T <= maxT; T++) {
      k.prepareTokens(fmt, xp, cols, T, tokens);
      for (let nr = 1; nr <= 8; nr++) {
        const Y = new Float32Array(buf, yp, maxT * ldy);
        Y.fill(7);
        k.matMat(fmt | mm.PREPARED, wp, tokens, yp, cols, ldy, T, 0, scratch, 8, 8 + nr, 1);
        k.matMat(fmt | mm.PREPARED, wp, tokens, yp, cols, ldy, T, 0, scratch, 0, 8, 0);
        for (let t = 0; t < maxT; t++)
          for (let r = 0; r < ldy; r++) {
            const got = Y[t * ldy + r];
            if (t >= T || r >= 8 + nr) {
              assert.is(got, 7, `${dtype} T ${T} rows 8+${nr}: token ${t} row ${r} written`);
              continue;
            }
            const x = X.subarray(t * cols, (t + 1) * cols);
            const bound = 1e-5 * (1 + Math.abs(expected[t][r])) + tokenRounding(fmt, x, D, r, cols);
            assert.ok(Math.abs(got - expected[t][r]) <= bound, `${dtype} T ${T} rows 8+${nr}: token ${t} row ${r}: ${got} vs ${expected[t][r]} (bound ${bound})`);
          }
      }
    }
  });

for (const dtype of ["f32", "f16", "q8", "q4"]) {
  test(`matVecGlu (${dtype}) over feature tiles split at 32 and 64 = act(h1) * h2 of the reference product within its storage error, h bit for bit ${MATVEC[dtype]}'s, the output quantized (q != 0) as quantizeInput would`, () => {
    const n = 96, rows = 2 * n, cols = 64;
    const { W, x, wp, xp, quantized } = productOperands(dtype, rows, cols);
    const hp = alloc(4 * rows), out = alloc(4 * n), q = alloc(inputBytes(n));
    const qfmt = quantized ? FMT[dtype] : 0, qp = quantized ? q : 0;
    k.matVecGlu(FMT[dtype], wp, xp, hp, cols, n, 0, out, qfmt, qp, 0, 32, 0);
    k.matVecGlu(FMT[dtype], wp, xp, hp, cols, n, 0, out, qfmt, qp, 32, 64, 1);
    k.matVecGlu(FMT[dtype], wp, xp, hp, cols, n, 0, out, qfmt, qp, 64, n, 0);
    const h = get(hp, rows);
    const want = alloc(4 * rows);
    k[MATVEC[dtype]](wp, xp, want, cols, 0, 0, rows, 0);
    assert.equal(Array.from(new Uint32Array(buf, hp, rows)), Array.from(new Uint32Array(buf, want, rows)), "h");
    const expected = ref.matVec(W, rows, cols, x);
    const bounds = productBounds(dtype, W, rows, cols, x, expected);
    for (let r = 0; r < rows; r++) assert.ok(Math.abs(h[r] - expected[r]) <= bounds[r], `h[${r}]: ${h[r]} vs ${expected[r]}`);
    const silu = ref.gluActivation("silu");
    const o = get(out, n);
    for (let i = 0; i < n; i++) {
      const e = silu(h[i]) * h[n + i];
      assert.ok(Math.abs(o[i] - e) <= 1e-5 * (1 + Math.abs(e)), `out[${i}]: ${o[i]} vs ${e}`);
    }
    if (quantized) {
      const qw = alloc(inputBytes(n));
      k.quantizeInput(FMT[dtype], out, qw, n);
      const i8 = dtype === "q4" && build === "relaxed-simd";
      const bytesOf = (p) => Array.from(new Uint8Array(buf, p, i8 ? n : 2 * n)).concat(Array.from(new Uint8Array(buf, p + 2 * n, (n / 32) * (dtype === "q8" || i8 ? 8 : 4))));
      assert.equal(bytesOf(q), bytesOf(qw), "quantized output");
    }
  });
}

test("matMatFormat: q4 on i8 tokens in the relaxed build, i16 in SIMD128; q8 on i16; f32/f16 as stored", () => {
  assert.is(k.matMatFormat(FMT.q4), FMT.q4 | (build === "relaxed-simd" ? mm.I8_INPUT : mm.INT_INPUT));
  assert.is(k.matMatFormat(FMT.q8), FMT.q8 | mm.INT_INPUT);
  assert.is(k.matMatFormat(FMT.f32), FMT.f32);
  assert.is(k.matMatFormat(FMT.f16), FMT.f16);
  for (const dtype of ["f32", "f16", "q8", "q4"]) assert.ok(mm.MATMAT_PATHS.includes(k.matMatFormat(FMT[dtype])), `${dtype}: a path the memory plan covers`);
});

test("prepareTokenGroups over split token ranges (the pool's form) = prepareTokens, byte for byte", () => {
  const cols = 64;
  for (const fmt of mm.MATMAT_PATHS)
    for (const [T, splits] of [[9, [0, 4, 8, 9]], [5, [0, 4, 5]], [3, [0, 3]]]) {
      const xp = put(f64(T * cols, 3));
      const bytes = mm.preparedBytes(fmt, T, cols);
      const whole = alloc(bytes), parts = alloc(bytes);
      new Uint8Array(buf, whole, bytes).fill(0xa5);
      new Uint8Array(buf, parts, bytes).fill(0x5a);
      k.prepareTokens(fmt, xp, cols, T, whole);
      for (let i = splits.length - 2; i >= 0; i--) k.prepareTokenGroups(fmt, xp, cols, T, parts, splits[i], splits[i + 1], i & 1);
      assert.equal(new Uint8Array(buf, parts, bytes), new Uint8Array(buf, whole, bytes), `fmt ${fmt} T ${T}`);
    }
});

test("the host's mat-mat sizes (src/cpu/matmat-layout.ts) = the kernels' own", () => {
  for (const fmt of mm.MATMAT_PATHS)
    for (const prepared of [0, mm.PREPARED])
      for (const T of [1, 4, 5, 127, 128])
        for (const cols of [32, 96, 1024, 2816]) {
          const what = `fmt ${fmt} T ${T} cols ${cols}`;
          assert.is(mm.preparedBytes(fmt, T, cols), Number(k.preparedBytes(fmt, T, cols)), `preparedBytes ${what}`);
          assert.is(mm.matMatScratchBytes(fmt | prepared, T, cols), Number(k.matMatScratchBytes(fmt | prepared, T, cols)), `matMatScratchBytes ${what}${prepared ? " prepared" : ""}`);
        }
});

test("firstNonF16: the first value f16 cannot store (|x| >= 65520, inf, NaN) at every lane, -1 when all fit", () => {
  const clean = Float32Array.from({ length: 64 }, (_, i) => (i % 2 ? -1 : 1) * (i === 5 ? 65519.99 : i === 9 ? 65504 : i * 1000));
  assert.is(k.firstNonF16(put(clean), clean.length), -1);
  for (const bad of [65520, -65520, 1e30, Infinity, -Infinity, NaN])
    for (const at of [0, 1, 2, 3, 6, 63]) {
      const x = clean.slice();
      x[at] = bad;
      x[at + 1 < 64 ? 63 : 0] = NaN; // a later bad value does not hide the first
      if (at === 63) x[0] = 0;
      assert.is(k.firstNonF16(put(x), x.length), at, `${bad} at ${at}`);
    }
});

test("rmsNorm and layerNorm = reference", () => {
  const n = 96, T = 3;
  const x = f64(T * n, 3);
  const w = uniform(rand, n, 1), b = uniform(rand, n, 1);
  const xp = put(x), yp = alloc(4 * T * n), wp = put(w), bp = put(b);
  k.rmsNorm(xp, yp, n, T);
  const y = get(yp, T * n);
  k.layerNorm(xp, yp, wp, bp, n, 1e-5, T);
  const z = get(yp, T * n);
  for (let t = 0; t < T; t++) {
    const xt = Float64Array.from(new Float32Array(x.subarray(t * n, (t + 1) * n)));
    close(y.subarray(t * n, (t + 1) * n), ref.rmsNorm(xt), 1e-6, "rmsNorm");
    close(z.subarray(t * n, (t + 1) * n), ref.layerNorm(xt, w, b, 1e-5), 1e-6, "layerNorm");
  }
});

test("rmsNormRows over tiles split at 32 and 68, and its 4-wide tail = reference rmsNorm of the whole row; quantizing (q != 0) = quantizeInput of its output, byte for byte", () => {
  const n = 96;
  const x = f64(n, 3);
  const xp = put(x), yp = alloc(4 * n);
  k.rmsNormRows(xp, yp, n, 0, 0, 0, 32, 0);
  k.rmsNormRows(xp, yp, n, 0, 0, 32, 68, 1);
  k.rmsNormRows(xp, yp, n, 0, 0, 68, n, 0);
  close(get(yp, n), ref.rmsNorm(Float64Array.from(new Float32Array(x))), 1e-6, "rmsNormRows");
  // bit for bit what the one-thread rmsNorm writes (the decode step swaps one for the other)
  const zp = alloc(4 * n);
  k.rmsNorm(xp, zp, n, 1);
  assert.equal(Array.from(new Uint32Array(buf, yp, n)), Array.from(new Uint32Array(buf, zp, n)), "rmsNorm's bits");
  for (const dtype of ["q8", "q4"]) {
    const q = alloc(inputBytes(n)), want = alloc(inputBytes(n));
    k.rmsNormRows(xp, yp, n, FMT[dtype], q, 0, 64, 1);
    k.rmsNormRows(xp, yp, n, FMT[dtype], q, 64, n, 0);
    k.quantizeInput(FMT[dtype], yp, want, n);
    const i8 = dtype === "q4" && build === "relaxed-simd";
    const bytesOf = (p) => Array.from(new Uint8Array(buf, p, i8 ? n : 2 * n)).concat(Array.from(new Uint8Array(buf, p + 2 * n, (n / 32) * (dtype === "q8" || i8 ? 8 : 4))));
    assert.equal(bytesOf(q), bytesOf(want), `${dtype} quantization`);
  }
});

test("touchLines returns the xor of the first word of every 64-byte line it loads", () => {
  const bytes = 64 * 37 + 20; // the last line partly
  const p = alloc(bytes);
  const words = new Int32Array(buf, p, bytes / 4);
  for (let i = 0; i < words.length; i++) words[i] = Math.floor(rand() * 2 ** 31) ^ (i << 3);
  let want = 0;
  for (let i = 0; i < bytes / 4; i += 16) want ^= words[i];
  assert.is(k.touchLines(p, bytes), want);
  assert.is(k.touchLines(p, 64), words[0]);
  assert.is(k.touchLines(p, 0), 0);
});

test("glu's SiLU (the SIMD exp: clamp, rounding to n, 2^n from the bits) = reference to 2e-6 of each value over [-80, 80]", () => {
  const n = 4000;
  const h = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    h[i] = -80 + (160 * i) / (n - 1) + (i % 3) * 1e-3; // spans exponents 2^-115 .. 2^115 of e^-x
    h[n + i] = 1;
  }
  h[n / 2] = 0;
  const hp = put(h), out = alloc(4 * n);
  k.glu(hp, out, n, 0, 1, 0, 0, 0, n, 0);
  const got = get(out, n);
  const silu = ref.gluActivation("silu");
  for (let i = 0; i < n; i++) {
    const want = silu(h[i]);
    assert.ok(Math.abs(got[i] - want) <= 2e-6 * Math.abs(want), `silu(${h[i]}): ${got[i]} vs ${want}`);
  }
});

test("embed = reference embed (with the sqrt(d) scale)", () => {
  const vocab = 10, d = 64;
  const table = uniform(rand, vocab * d, 1);
  const tp = put(table), dst = alloc(4 * d);
  k.embed(FMT.f32, tp, d, 7, Math.fround(Math.sqrt(d)), dst);
  close(get(dst, d), ref.embed(table, d, 7, Math.sqrt(d)), 1e-6, "embed");
});

test("shortConvStep over a chunk = reference step by step, state advanced", () => {
  const d = 32, T = 5;
  const w = uniform(rand, 4 * d, 0.5);
  const state0 = f64(3 * d);
  const x = f64(T * d, 2);
  const sp = put(state0), wp = put(w), xp = put(x), op = alloc(4 * T * d);
  k.shortConvStep(sp, xp, wp, op, d, T, 0, 0, 0, 12, 0);
  k.shortConvStep(sp, xp, wp, op, d, T, 0, 0, 12, d, 1);
  const refState = Float64Array.from(new Float32Array(state0));
  const out = get(op, T * d);
  for (let t = 0; t < T; t++) {
    const expected = ref.shortConvStep(refState, Float64Array.from(new Float32Array(x.subarray(t * d, (t + 1) * d))), w);
    close(out.subarray(t * d, (t + 1) * d), expected, 1e-6, `conv token ${t}`);
  }
  close(get(sp, 3 * d), refState, 1e-7, "conv state");
});

test("rmsConvStep over tiles split at 32 and 64 = reference shortConvStep of rmsNorm(x), state advanced; quantizing (q != 0) = quantizeInput of its output, byte for byte", () => {
  const d = 96;
  const w = uniform(rand, 4 * d, 0.5);
  const state0 = uniform(rand, 3 * d, 1);
  const x = Float64Array.from(uniform(rand, d, 3));
  const sp = put(state0), wp = put(w), xp = put(x), op = alloc(4 * d);
  k.rmsConvStep(sp, xp, wp, op, d, 0, 0, 0, 32, 0);
  k.rmsConvStep(sp, xp, wp, op, d, 0, 0, 32, 64, 1);
  k.rmsConvStep(sp, xp, wp, op, d, 0, 0, 64, d, 0);
  const refState = Float64Array.from(state0);
  const expected = ref.shortConvStep(refState, ref.rmsNorm(x), w);
  const out = get(op, d);
  for (let i = 0; i < d; i++) assert.ok(Math.abs(out[i] - expected[i]) <= 1e-5 * Math.max(1, Math.abs(expected[i])), `out[${i}]: ${out[i]} vs ${expected[i]}`);
  const state = get(sp, 3 * d);
  for (let i = 0; i < 3 * d; i++) assert.ok(Math.abs(state[i] - refState[i]) <= 1e-5 * Math.max(1, Math.abs(refState[i])), `state[${i}]: ${state[i]} vs ${refState[i]}`);
  for (const dtype of ["q8", "q4"]) {
    const q = alloc(inputBytes(d)), want = alloc(inputBytes(d));
    const sp2 = put(state0);
    k.rmsConvStep(sp2, xp, wp, op, d, FMT[dtype], q, 0, 32, 0);
    k.rmsConvStep(sp2, xp, wp, op, d, FMT[dtype], q, 32, d, 1);
    k.quantizeInput(FMT[dtype], op, want, d);
    // what quantizeInput writes: 2 bytes an input (Q4 in the relaxed build: 1), a scale a block, for Q8 and relaxed Q4 also a correction term
    const i8 = dtype === "q4" && build === "relaxed-simd";
    const bytesOf = (p) => Array.from(new Uint8Array(buf, p, i8 ? d : 2 * d)).concat(Array.from(new Uint8Array(buf, p + 2 * d, (d / 32) * (dtype === "q8" || i8 ? 8 : 4))));
    assert.equal(bytesOf(q), bytesOf(want), `${dtype} quantization`);
  }
});

test("decayKey = reference, including strong and weak decay", () => {
  const n = 64, ld = 80;
  const a = new Float32Array(ld);
  for (let i = 0; i < n; i++) a[i] = [-700, -40, -3, 0, 2, 25, 90][i % 7] * (1 + rand());
  const ap = put(a), kp = alloc(4 * n);
  k.decayKey(ap, ld, kp, n, 1);
  const expected = ref.decayKey(Float64Array.from(a.subarray(0, n)));
  const alpha = get(ap, n), key = get(kp, n);
  for (let i = 0; i < n; i++) {
    assert.ok(Math.abs(alpha[i] - expected.alpha[i]) <= 1e-6 * expected.alpha[i] + 1e-30, `alpha ${i}`);
    assert.ok(Math.abs(key[i] - expected.k[i]) <= 1e-6 * expected.k[i] + 1e-30, `k ${i}: ${key[i]} vs ${expected.k[i]}`);
  }
});

test("glaStep over heads and tokens = reference glaStep (its four-row pass, and 0, 1 or 2 rows left over)", () => {
  for (const [H, K, V, T] of [[3, 8, 16, 4], [2, 6, 8, 2], [2, 5, 12, 3]]) {
    const dk = H * K, d = H * V, ld = 2 * dk + 2 * d;
    const S0 = uniform(rand, H * K * V, 1);
    const P = new Float32Array(T * ld);
    const kk = new Float32Array(T * dk);
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < dk; i++) {
        P[t * ld + i] = 2 * rand() - 1; // q
        const alpha = Math.fround(rand());
        P[t * ld + dk + i] = alpha;
        kk[t * dk + i] = Math.fround(1 - alpha);
      }
      for (let j = 0; j < d; j++) P[t * ld + 2 * dk + j] = 2 * rand() - 1; // v
    }
    const Sp = put(S0), Pp = put(P), kp = put(kk), op = alloc(4 * T * d);
    k.glaStep(Sp, Pp, Pp + 4 * dk, Pp + 8 * dk, ld, kp, op, H, K, V, T, 0, 1, 0);
    k.glaStep(Sp, Pp, Pp + 4 * dk, Pp + 8 * dk, ld, kp, op, H, K, V, T, 1, H, 1);
    const S = S0.slice();
    const o = get(op, T * d);
    for (let t = 0; t < T; t++) {
      const row = (off, n) => Float64Array.from(P.subarray(t * ld + off, t * ld + off + n));
      const expected = ref.glaStep(S, row(0, dk), Float64Array.from(kk.subarray(t * dk, (t + 1) * dk)), row(dk, dk), row(2 * dk, d), { H, K, V });
      close(o.subarray(t * d, (t + 1) * d), expected, 1e-5, `o token ${t}`);
    }
    close(get(Sp, H * K * V), S, 1e-5, "S");
  }
});

test("glu with every glu_act = reference activation times the second half", () => {
  const names = ["silu", "gelu", "relu", "elu", "sigmoid", "leak", "1+elu", "2+elu", "sine"];
  const n = 40, T = 2;
  const h = uniform(rand, T * 2 * n, 4);
  const hp = put(h), out = alloc(4 * T * n);
  names.forEach((name, code) => {
    k.glu(hp, out, n, code, T, 0, 0, 0, 16, 0);
    k.glu(hp, out, n, code, T, 0, 0, 16, n, 1);
    const act = ref.gluActivation(name);
    const expected = new Float64Array(T * n);
    for (let t = 0; t < T; t++) for (let i = 0; i < n; i++) expected[t * n + i] = act(h[2 * t * n + i]) * h[2 * t * n + n + i];
    close(get(out, T * n), expected, 1e-6, `glu ${name}`);
  });
});

// the 380m shape's heads (K 64, V 128) are covered by the engine tests; here K not a multiple of 4 (the GLA
// step's leftover rows, the self-augmentation's scalar tail), small V, one token, heads split as the pool splits them
for (const [H, K, V, T] of [[2, 8, 32, 3], [3, 6, 8, 2], [2, 3, 12, 3], [2, 5, 4, 1], [1, 9, 16, 2]]) {
  test(`tokenMixerHeads H=${H} K=${K} V=${V} over ${T} tokens, heads split 1 | ${H - 1} = reference bias, decayKey, glaStep, selfAugment, headNorm, gateOutput`, () => {
    const dk = H * K, d = H * V, ld = 2 * dk + 2 * d;
    const P = uniform(rand, T * ld, 2);
    const S0 = uniform(rand, H * K * V, 1);
    const gBias = uniform(rand, d, 0.5), wAug = uniform(rand, dk, 3);
    const Pp = put(P), Sp = put(S0), kp = alloc(4 * T * dk), op = alloc(4 * T * d), gp = put(gBias), wp = put(wAug);
    k.tokenMixerHeads(Sp, Pp, ld, kp, gp, wp, op, H, K, V, T, 0, 0, 0, 1, 0);
    if (H > 1) k.tokenMixerHeads(Sp, Pp, ld, kp, gp, wp, op, H, K, V, T, 0, 0, 1, H, 1);
    const S = Float64Array.from(S0);
    const o = get(op, T * d);
    const shape = { H, K, V };
    for (let t = 0; t < T; t++) {
      const row = (off, n) => Float64Array.from(P.subarray(t * ld + off, t * ld + off + n));
      const q = row(0, dk), v = row(2 * dk, d);
      const g = row(2 * dk + d, d).map((x, i) => x + gBias[i]);
      const dec = ref.decayKey(row(dk, dk));
      // the kernel keeps alpha and k in f32 between its steps
      const alpha = Float64Array.from(new Float32Array(dec.alpha)), key = Float64Array.from(new Float32Array(dec.k));
      const gla = ref.glaStep(S, q, key, alpha, v, shape);
      const expected = ref.gateOutput(g, ref.headNorm(ref.selfAugment(gla, q, key, wAug, v, shape), H, V));
      close(o.subarray(t * d, (t + 1) * d), expected, 1e-5, `token ${t} o`);
      close(get(kp + 4 * t * dk, dk), dec.k, 1e-6, `token ${t} k`);
    }
    close(get(Sp, H * K * V), S, 1e-5, "S");
  });
}

test(`quantizeInput: levels, scales and correction terms where the ${build} build's kernels read them`, () => {
  const cols = 96, nb = cols / 32;
  const x = Float32Array.from(uniform(rand, cols, 2));
  x[40] = 0; // a level of 0 next to others
  const xp = put(x);
  // f32 arithmetic as the kernel does it; nearest rounds ties to even
  const nearest = (v) => (Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v));
  const levels = [], scales = [];
  for (let b = 0; b < nb; b++) {
    let m = 0;
    for (let i = 32 * b; i < 32 * b + 32; i++) m = Math.max(m, Math.abs(x[i]));
    const scale = Math.fround(m / 127), inv = scale > 0 ? Math.fround(1 / scale) : 0;
    scales.push(scale);
    for (let i = 32 * b; i < 32 * b + 32; i++) levels.push(nearest(Math.fround(x[i] * inv)));
  }
  for (const dtype of ["q8", "q4"]) {
    const q = alloc(inputBytes(cols));
    k.quantizeInput(FMT[dtype], xp, q, cols);
    assert.equal(Array.from(new Float32Array(buf, q + 2 * cols, nb)), scales, `${dtype} scales`);
    const corr = Array.from(new Int32Array(buf, q + 2 * cols + 4 * nb, nb));
    const blockSum = (b, keep) => levels.slice(32 * b, 32 * b + 32).reduce((s, l, i) => s + (keep(i) ? l : 0), 0);
    if (dtype === "q4" && build === "relaxed-simd") {
      // i8 levels in column order; 8 * the block's sum of levels (the nibbles' +8 offset)
      assert.equal(Array.from(new Int8Array(buf, q, cols)), levels, "q4 i8 levels");
      assert.equal(corr, [0, 1, 2].map((b) => 8 * blockSum(b, () => true)), "q4 correction");
      continue;
    }
    const got = Array.from(new Int16Array(buf, q, cols));
    const want = [];
    for (let g = 0; g < cols; g += 8) {
      const l = levels.slice(g, g + 8);
      // Q8: per 4 columns (x1, x3, 256 x0 - x1, 256 x2 - x3); Q4: x0 x2 x4 x6 x1 x3 x5 x7
      if (dtype === "q8") for (const o of [0, 4]) want.push(l[o + 1], l[o + 3], 256 * l[o] - l[o + 1], 256 * l[o + 2] - l[o + 3]);
      else want.push(l[0], l[2], l[4], l[6], l[1], l[3], l[5], l[7]);
    }
    assert.equal(got, want, `${dtype} i16 levels`);
    if (dtype === "q8") assert.equal(corr, [0, 1, 2].map((b) => 32768 * blockSum(b, (i) => i % 2 === 0)), "q8 correction");
  }
});

test("shortConvStep, glu and tokenMixerHeads quantizing their one-token output (q != 0) = quantizeInput of it, byte for byte", () => {
  for (const dtype of ["q8", "q4"]) {
    const fmt = FMT[dtype];
    // what quantizeInput writes: 2 bytes an input (Q4 in the relaxed build: 1), a scale a block, for Q8 and relaxed Q4 also a correction term
    const i8 = dtype === "q4" && build === "relaxed-simd";
    const bytesOf = (p, cols) => {
      const levels = Array.from(new Uint8Array(buf, p, i8 ? cols : 2 * cols));
      return levels.concat(Array.from(new Uint8Array(buf, p + 2 * cols, (cols / 32) * (dtype === "q8" || i8 ? 8 : 4))));
    };
    // conv over 96 features split at 32 (the pool's 32-aligned tiles)
    const d = 96;
    const sp = put(uniform(rand, 3 * d, 1)), xp = put(uniform(rand, d, 1)), wp = put(uniform(rand, 4 * d, 1)), op = alloc(4 * d);
    const q = alloc(inputBytes(d)), want = alloc(inputBytes(d));
    k.shortConvStep(sp, xp, wp, op, d, 1, fmt, q, 0, 32, 0);
    k.shortConvStep(sp, xp, wp, op, d, 1, fmt, q, 32, d, 1);
    k.quantizeInput(fmt, op, want, d);
    assert.equal(bytesOf(q, d), bytesOf(want, d), `${dtype} shortConvStep`);
    // glu over 64 features split at 32
    const n = 64;
    const hp = put(uniform(rand, 2 * n, 3)), out = alloc(4 * n);
    const gq = alloc(inputBytes(n)), gwant = alloc(inputBytes(n));
    k.glu(hp, out, n, 0, 1, fmt, gq, 0, 32, 0);
    k.glu(hp, out, n, 0, 1, fmt, gq, 32, n, 1);
    k.quantizeInput(fmt, out, gwant, n);
    assert.equal(bytesOf(gq, n), bytesOf(gwant, n), `${dtype} glu`);
    // token mixer: 3 heads of V = 64 (two blocks each), heads split 1 | 2
    const H = 3, K = 4, V = 64, dk = H * K, dv = H * V, ld = 2 * dk + 2 * dv;
    const Pp = put(uniform(rand, ld, 2)), Sp = put(uniform(rand, H * K * V, 1)), kp = alloc(4 * dk), mo = alloc(4 * dv);
    const mq = alloc(inputBytes(dv)), mwant = alloc(inputBytes(dv));
    const gb = put(uniform(rand, dv, 0.5)), wa = put(uniform(rand, dk, 1));
    k.tokenMixerHeads(Sp, Pp, ld, kp, gb, wa, mo, H, K, V, 1, fmt, mq, 0, 1, 0);
    k.tokenMixerHeads(Sp, Pp, ld, kp, gb, wa, mo, H, K, V, 1, fmt, mq, 1, H, 1);
    k.quantizeInput(fmt, mo, mwant, dv);
    assert.equal(bytesOf(mq, dv), bytesOf(mwant, dv), `${dtype} tokenMixerHeads`);
  }
});

test("argmax and topK agree with a sort", () => {
  const n = 1000;
  const x = uniform(rand, n, 10);
  x[517] = 11; // the maximum
  const xp = put(x);
  assert.is(k.argmax(xp, n), 517);
  const kk = 20;
  const idx = alloc(4 * kk), val = alloc(4 * kk);
  assert.is(k.topK(xp, n, kk, idx, val), kk);
  const sorted = Array.from(x, (v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, kk);
  assert.equal(Array.from(new Int32Array(buf, idx, kk)), sorted.map((p) => p[1]));
  assert.equal(Array.from(new Float32Array(buf, val, kk)), sorted.map((p) => p[0]));
  assert.is(k.topK(xp, 5, 8, idx, val), 5, "k larger than n returns n");
});

test("readBandwidth reads every byte of its blocks (xor of all words)", () => {
  const blocks = 3, bytes = blocks * 65536;
  const p = alloc(bytes), out = alloc(32);
  const words = new Int32Array(buf, p, bytes / 4);
  for (let i = 0; i < words.length; i++) words[i] = Math.imul(i + 1, 0x9e3779b1);
  k.readBandwidth(p, 65536, out, 0, blocks, 1);
  const expected = [0, 0, 0, 0];
  for (let i = 0; i < words.length; i++) expected[i & 3] ^= words[i];
  assert.equal(Array.from(new Int32Array(buf, out + 16, 4)), expected);
});

test("f16 storage: round to nearest even, values whose f16 is subnormal stored as zero of their sign", () => {
  const least = 2 ** -14; // the least normal f16
  const W = Float32Array.from([least, least - 2 ** -26, 3e-5, -1e-5, 1e-9, 1 + 2 ** -11, -2.5, 65504]);
  const got = Array.from(dequantized("f16", storeMatrix("f16", W, 1, 8), 1, 8));
  // 2^-14 - 2^-26 rounds up to the least normal; 1 + 2^-11 is a tie, to even (1)
  const want = [least, least, 0, -0, 0, 1, -2.5, 65504];
  want.forEach((v, i) => assert.ok(Object.is(got[i], v), `W[${i}] = ${W[i]}: stored ${got[i]}, want ${v}`));
});

test("matVecF16 with |x| beyond 2^16 (where x times 2^112 overflows) = reference matVec of the stored f16", () => {
  const rows = 13, cols = 64; // three groups of four rows and a remainder row
  const W = uniform(rand, rows * cols, 1);
  const wp = storeMatrix("f16", W, rows, cols);
  const D = dequantized("f16", wp, rows, cols);
  const x = f64(cols, 2);
  x[5] = 1e5;
  x[42] = -3e6;
  const xp = put(x), yp = alloc(4 * rows);
  k.matVecF16(wp, xp, yp, cols, 0, 0, 8, 0);
  k.matVecF16(wp, xp, yp, cols, 0, 8, rows, 1);
  close(get(yp, rows), ref.matVec(D, rows, cols, x), 1e-5, "matVecF16 large x");
});

test("matVecF16: the products with x rebased sum bit for bit as with the weights rebased", () => {
  // the same rows twice: alone, and with 8 more columns of zero weights
  // against x = 1e30, which overflows when rebased and so sends every group
  // of four rows through the weight-rebasing path, where they add exact zeros
  const rows = 8, cols = 96;
  const W = uniform(rand, rows * cols, 1);
  const Wz = new Float64Array(rows * (cols + 8));
  for (let r = 0; r < rows; r++) Wz.set(W.slice(r * cols, (r + 1) * cols), r * (cols + 8));
  const x = f64(cols, 2);
  const xz = Float64Array.from([...x, ...new Array(8).fill(1e30)]);
  const wp = storeMatrix("f16", W, rows, cols), wzp = storeMatrix("f16", Wz, rows, cols + 8);
  const yp = alloc(4 * rows), yzp = alloc(4 * rows);
  k.matVecF16(wp, put(x), yp, cols, 0, 0, rows, 0);
  k.matVecF16(wzp, put(xz), yzp, cols + 8, 0, 0, rows, 0);
  const y = get(yp, rows), yz = get(yzp, rows);
  for (let r = 0; r < rows; r++) assert.ok(Number.isFinite(y[r]) && Object.is(y[r], yz[r]), `row ${r}: ${y[r]} vs ${yz[r]}`);
});

if (build === "simd") {
  test("the relaxed-SIMD build passes this same file (child Node with the flag)", () => {
    passesWithRelaxedSimd(import.meta.url, /kernels build: relaxed-simd/);
  });
}

test.run();
