// The CPU engine's thread pool (src/cpu/pool.ts): every row of a job is
// computed exactly once whatever the split (fixed shares, tiles that do or do
// not divide the rows, the last tiles cut in quarters rounded to the
// alignment), over many jobs in a row, with 1 and 2 threads. Each
// job accumulates a mat-vec onto y, so a tile run twice or skipped shows up
// against the reference product.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { wasmFeatures } from "../dist/cpu/features.js";
import * as ref from "../dist/reference/ops.js";
import { seededRandom, uniform } from "./helpers/random-model.mjs";
import { withKernelPool } from "./helpers/wasm-kernels.mjs";

const features = await wasmFeatures();
const withPool = (threads, fn) => withKernelPool(threads, 64, ({ pool, buf }) => fn(pool, buf));

const rows = 333, cols = 20;
const rand = seededRandom(7);
const W = Float32Array.from(uniform(rand, rows * cols, 1));
const x = Float64Array.from(uniform(rand, cols, 1));
const expected = ref.matVec(W, rows, cols, x);

for (const threads of [1, 2]) {
  test(`${threads} thread(s): 650 jobs of fixed shares and of tiles each cover every row exactly once`, async () => {
    if (threads > 1 && !features.threads) return; // no shared memory on this host
    await withPool(threads, async (pool, buf) => {
      const wp = 65536, xp = wp + rows * cols * 4, yp = xp + 4096;
      new Float32Array(buf, wp, rows * cols).set(W);
      new Float32Array(buf, xp, cols).set(x);
      const y = new Float32Array(buf, yp, rows);
      y.fill(0);
      // [tile, alignment]: tiles of 7 end in quarters of 2 rows, of 100 in 25, of 64 aligned to 4 in 16, of 104 aligned to 8 in 32
      const splits = [[0, 1], [1, 1], [4, 1], [7, 1], [64, 1], [100, 1], [333, 1], [1000, 1], [0, 4], [64, 4], [100, 4], [8, 8], [104, 8]];
      const jobs = 650;
      for (let j = 0; j < jobs; j++) {
        const [tile, align] = splits[j % splits.length];
        pool.run("matVecF32", rows, align, [wp, xp, yp, cols, 1], tile);
      }
      for (let r = 0; r < rows; r++) {
        const want = jobs * expected[r];
        assert.ok(Math.abs(y[r] - want) <= 1e-3 * (1 + Math.abs(want)), `row ${r}: ${y[r]} vs ${want}`);
      }
    });
  });
}

for (const threads of [1, 2]) {
  test(`${threads} thread(s): 400 queued jobs, each reading the one before's output, in lists split by length and tile count, run in order (8 times: an order broken shows up by chance)`, async () => {
    if (threads > 1 && !features.threads) return;
    for (let rep = 0; rep < 8; rep++) await withPool(threads, async (pool, buf) => {
      // job j: b[j + 1] = P b[j] for a permutation matrix P (exact in f32), so a job that ran before the one it reads shows up
      const n = 96, jobs = 400;
      const perm = Array.from({ length: n }, (_, i) => (i * 37 + 11) % n);
      const P = new Float32Array(n * n);
      perm.forEach((c, r) => (P[r * n + c] = 1));
      const wp = 65536, bp = wp + n * n * 4;
      new Float32Array(buf, wp, n * n).set(P);
      const b = (j) => new Float32Array(buf, bp + j * n * 4, n);
      for (let j = 1; j <= jobs; j++) b(j).fill(-1);
      b(0).set(Array.from({ length: n }, (_, i) => i + 1));
      // [tile, alignment, warm]: fixed shares, tiles of 1 row (96 tiles a job: the lists fill MAX_TILES), 8, 32
      const splits = [[0, 4, false], [1, 1, true], [8, 4, true], [32, 4, false], [8, 8, false]];
      for (let j = 0; j < jobs; j++) {
        const [tile, align, warm] = splits[j % splits.length];
        pool.queue("matVecF32", n, align, [wp, bp + j * n * 4, bp + (j + 1) * n * 4, n, 0], tile, warm ? { at: wp, rowBytes: 4 * n } : null);
      }
      pool.flush();
      let want = Array.from(b(0));
      for (let j = 1; j <= jobs; j++) {
        want = perm.map((c) => want[c]);
        assert.equal(Array.from(b(j)), want, `job ${j - 1}'s output`);
      }
    });
  });
}

test.run();
