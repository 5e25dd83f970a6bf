import type { GluActivation } from "../model/config.js";
import { gluActSource, uniformU32, type BindingKind, type BufferPart, type Pipelines } from "./pipelines.js";

/** A workgroup tile of shaders/gemm.wgsl: BM x BN outputs, K step BK, TM x TN per thread. */
export interface GemmTile {
  BM: number;
  BN: number;
  BK: number;
  TM: number;
  TN: number;
}

/**
 * Tile variants, largest first. Big tiles reuse each loaded value more,
 * small ones keep all multiprocessors busy when few output tiles exist
 * (short prompts, narrow projections). Measured on an H200 (Dawn/Vulkan):
 * 128x64 with 8x4 per thread runs the projections at 30-34 TFLOP/s; a
 * 128x128 (8x8 per thread) tile was no faster where it worked and fell to
 * 1-2 TFLOP/s with the residual epilogue, so it is not offered. The 64x64
 * tile gives each of its 128 threads 8x4 outputs, like the big one: against
 * 4x4 on 256 threads, 0.75-0.97x the time of every residual product at
 * M = 512 ... 4096 (benchGemm, best of 3), and 8x8-per-thread or 64x128
 * tiles were slower still.
 */
export const GEMM_TILES: Record<string, GemmTile> = {
  t128x64: { BM: 128, BN: 64, BK: 16, TM: 8, TN: 4 },
  t64x64: { BM: 64, BN: 64, BK: 16, TM: 8, TN: 4 },
  t32x64: { BM: 32, BN: 64, BK: 16, TM: 4, TN: 4 },
  t64x32: { BM: 64, BN: 32, BK: 16, TM: 4, TN: 4 },
};

/**
 * A wide tile for products whose big-tile workgroups fill their one or two
 * rounds of the GPU badly (metala-380m's GLU, 5632 wide, at T = 512 and
 * 1024: 256 and 512 workgroups instead of 352 and 704 of 128x64 on 396
 * places; its loads do not divide evenly over its threads, which gemm.wgsl
 * guards). Float weights give each of its 176 threads 16 x 4 outputs: more
 * multiply-adds per workgroup-memory load than 8 x 4, which pays where one
 * round is all there is (H200, GLU alone at T = 512: 0.179-0.182 ms
 * against 0.186-0.191 with 8 x 4 on 352 threads; whole prefills, builds
 * alternating in one process: 512 11.94-11.96 against 12.01-12.05 ms, 1024
 * 21.76-21.87 against 21.87-21.94, f16 512 11.84 against 11.91). Quantized
 * weights keep 8 x 4 (q8 / q4 at 512 with 16 x 4: 12.71 / 12.67 against
 * 12.48 / 12.47 ms), so they need a device that runs 352 invocations.
 * Slower than 128x64 where that runs several rounds (T = 2048 GLU 18.2
 * against 16.7 ms over 24 layers with 8 x 4), so only the rule in
 * chooseProduct picks it.
 */
const WIDE_TILES: Record<"float" | "quantized", GemmTile> = {
  float: { BM: 128, BN: 88, BK: 16, TM: 16, TN: 4 },
  quantized: { BM: 128, BN: 88, BK: 16, TM: 8, TN: 4 },
};

/** Invocations of a workgroup of `tile` (one per TM x TN outputs). */
const tileThreads = (t: GemmTile) => (t.BM / t.TM) * (t.BN / t.TN);

/** The wide tile for weights of `wtype`, if a device with these limits runs its workgroups. */
export function wideTileFor(limits: GPUSupportedLimits, wtype: WeightType): GemmTile | undefined {
  const tile = WIDE_TILES[wtype === "q8" || wtype === "q4" ? "quantized" : "float"];
  return tileThreads(tile) <= Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX) ? tile : undefined;
}

/**
 * A square tile: 128 x 128 outputs on 256 threads of 16 x 4, two workgroups
 * to an H200 multiprocessor, with more multiply-adds per workgroup-memory
 * load than the 8 x 4 tiles. Taken by the residual products (out and down)
 * from 845 tokens, in the fewest slices of K that fill 84% of its rounds'
 * slots and keep 80% of them on real rows (chooseResidual; never unsplit:
 * with the residual epilogue, C read, added and written, 16 x 4 tiles ran
 * at 1-2 TFLOP/s), and unsplit by the projections and the GLU where the big tile runs more
 * than a round and its workgroups fill their rounds to 80% (chooseProduct).
 * It replaced a 256 x 64 tile of the same threads (16 x 4 each), which it
 * beat on every product it took (H200, products alone, best of 2-3, ms):
 * 4096 q/k/v/g 0.710 against 0.742, out (2 slices) 0.244 against 0.255,
 * down (2 slices) 0.637 against 0.665, GLU 1.350 against 1.380 (128x64);
 * 2048 out 0.117 against 0.127, down 0.319 against 0.335, GLU 0.670
 * against 0.701 (128x64); the GLU at 576 0.222 against 0.244, 640 0.220
 * against 0.244, 768 0.227 against 0.245, 1344 0.448 against 0.486, 1536
 * 0.453 against 0.490, 2112 0.671 against 0.730, 2304 0.676 against 0.732,
 * 2816 0.891 against 0.943 (128x64), 3072 0.899 against 0.971, 3840 1.120
 * against 1.213. Where it fills its rounds to less than 80% the other
 * tiles or K slices win (GLU at 832 0.31 with 64x64, 1152 0.36 with it in
 * 2 slices). Whole prefills, the builds alternating calls in one process:
 * 576 14.21 against 14.79 ms, 1280 26.27 against 27.47, 2048 39.89 against
 * 40.68, 4096 75.94 against 78.15, 8192 151.7 against 156.0 (q8 4096 75.09
 * against 78.71); T = 512 takes none (11.97 either way).
 */
export const SQUARE_TILE: GemmTile = { BM: 128, BN: 128, BK: 16, TM: 16, TN: 4 };

/**
 * Workgroups the device should get at least, to fill a big GPU (about two
 * per multiprocessor of an H200). Measured there at T = 512: the projection
 * of q, k, v, g ran at 26 TFLOP/s with 64x64 tiles (384 workgroups) against
 * 22 with 128x64 (192); at T = 2048 the 128x64 tile wins on every shape.
 */
const ENOUGH_WORKGROUPS = 256;

/**
 * Workgroups of the two largest tiles an H200 runs at once (132
 * multiprocessors; 3 of 128x64 on 256 threads, 5 of 64x64 on 128), read off
 * GEMM sweeps at M = 512 ... 1536: a few more than a round holds cost nearly
 * a second round (64x64, 1024 x 1024 in 4 K slices: 640 workgroups 45.6 us,
 * 704 workgroups 77.9 us; the q, k, v, g projection at M = 704: 288 of
 * 128x64, a round not full, 197 us, against 528 of 64x64 in 135 us);
 * and 2 of the wide tile on 352 threads (264), the round chooseProduct
 * reads for either form of it (where it picks the wide tile, T = 512 and
 * 1024, the 176-thread form was measured faster too); and 2 of the square
 * tile, as of the 256x64 tile of the same threads before it (264: the GLU
 * at M = 768, 264 workgroups of either, ran at 35-39 TFLOP/s alone).
 */
const ROUND = { big: 396, next: 660, wide: 264, square: 264 };

/** Split-K counts a product whose sums a later kernel adds up (gemm.wgsl SPLIT) may use. */
export const SPLIT_COUNTS = [1, 2, 4] as const;
/**
 * The residual products may take 3 slices too: 64x64 tiles in 3 slices fit
 * one round where 4 do not (T = 704-832: 528-624 workgroups). H200, the
 * builds alternating calls in one process, best of 20: T=704 16.50 against
 * 17.14 ms, 832 18.78 against 19.65; 768, 1152, 3072 within 0.5%. The
 * projections and the GLU keep 1, 2, 4: with 3 as well, T=192 took 7.73
 * against 7.39 ms, and 576-640 gained nothing.
 */
export const RESIDUAL_SPLIT_COUNTS = [1, 2, 3, 4] as const;
export const MAX_SPLITS = RESIDUAL_SPLIT_COUNTS[RESIDUAL_SPLIT_COUNTS.length - 1];

/**
 * How the tiled products of a forward pass are shaped: the tile variants
 * (largest first), and the least K a split-K slice may get (fewer steps
 * than that and the slices' loads outweigh the parallelism they buy).
 */
export interface GemmPlan {
  tiles: Record<string, GemmTile>;
  minSplitK: number;
  /** the wide tile, where the device runs its invocations (wideTileFor) */
  wide?: GemmTile;
  /** SQUARE_TILE, for the residual products of long prompts and the longer products */
  square?: GemmTile;
  /**
   * Float weights on a big GPU: a product the rules leave unsplit may take
   * another tile by its modelled time (fastestUnsplit). Not for quantized
   * weights, whose loads dequantize: at T = 1856 the q8 GLU on 64x64 tiles
   * made a prefill 3.7% slower where f32 and f16 gained 3.5% and 2.8%.
   */
  retileUnsplit?: boolean;
}
export const GEMM_PLAN: GemmPlan = { tiles: GEMM_TILES, minSplitK: 256 };

/**
 * The plan for a device's weights of `wtype`: a hardware adapter gets the
 * tiles (by default all of GEMM_TILES), the wide tile where it runs it, the
 * square tile and (float weights) the retiling of unsplit products; a
 * software adapter gains nothing from tile shapes, so it gets the 64x64
 * tile alone (one pipeline a product to compile instead of several).
 */
export function devicePlan(
  limits: GPUSupportedLimits,
  wtype: WeightType,
  { software = false, tiles, minSplitK = GEMM_PLAN.minSplitK }: { software?: boolean; tiles?: Record<string, GemmTile>; minSplitK?: number } = {},
): GemmPlan {
  if (software) return { tiles: tiles ?? { t64x64: GEMM_TILES.t64x64 }, minSplitK };
  return { tiles: tiles ?? GEMM_TILES, minSplitK, wide: wideTileFor(limits, wtype), square: SQUARE_TILE, retileUnsplit: wtype === "f32" || wtype === "f16" };
}

/** Every tile the launch rules may pick from a plan: its tiles, the wide one and the square one. */
export function planTiles(plan: GemmPlan): Record<string, GemmTile> {
  return { ...plan.tiles, ...(plan.square ? { square: plan.square } : {}), ...(plan.wide ? { wide: plan.wide } : {}) };
}

/** Multiprocessors of the GPU the launch rules are measured on (an H200). */
const MULTIPROCESSORS = 132;

/**
 * How fast the float tiles run an unsplit product on an H200, read off
 * products alone at M = 576 ... 2048 (2026-11-30): `slots` workgroups share
 * a multiprocessor at once, and together they do `rate` million
 * multiply-adds a microsecond. A multiprocessor given n workgroups runs
 * them in ceil(n / slots) rounds at that rate, a last round partly filled
 * costing a full one (64x64: 4, 5, 6, 10 a multiprocessor ran at 0.127,
 * 0.130, 0.089, 0.134); given fewer than `slots`, up to 28% slower than
 * the rate. 128x64 showed no rounds (0.126-0.132 from 3 to 11 a
 * multiprocessor).
 */
const UNSPLIT_RATES: Record<string, { slots: number; rate: number }> = {
  "128x64/8x4": { slots: 1, rate: 0.128 },
  "64x64/8x4": { slots: 5, rate: 0.133 },
  "128x88/16x4": { slots: 2, rate: 0.129 },
  "128x128/16x4": { slots: 2, rate: 0.152 },
};

/**
 * Modelled microseconds of an unsplit product of M x N over K with `tile`
 * (UNSPLIT_RATES), if its rate is known and, with `fullRound`, if the
 * busiest multiprocessor gets at least a full round of its workgroups.
 */
function unsplitMicros(t: GemmTile, M: number, N: number, K: number, fullRound = false): number | undefined {
  const r = UNSPLIT_RATES[`${t.BM}x${t.BN}/${t.TM}x${t.TN}`];
  // the busiest multiprocessor's workgroups
  const n = Math.ceil(workgroups(t, M, N, 1) / MULTIPROCESSORS);
  if (!r || (fullRound && n < r.slots)) return undefined;
  const rate = n >= r.slots ? (r.rate * n) / (Math.ceil(n / r.slots) * r.slots) : r.rate * (1 - 0.28 * (1 - n / r.slots));
  return (n * t.BM * t.BN * K) / 1e6 / rate;
}

/**
 * The tile for a product the rules leave unsplit: theirs, or the 64x64 or
 * the wide tile where it gives every multiprocessor at least a full round
 * and unsplitMicros has it faster (the plan's retileUnsplit). H200, metala-380m,
 * whole prefills against the rules alone (builds alternating calls in one
 * process, best ms): 864 20.00 against 20.41 (the GLU on 64x64, the
 * projections on the wide tile), 960 20.62 against 21.96 (the GLU on 64x64
 * instead of the wide tile: 0.314 against 0.372 ms alone), 1792 38.28
 * against 38.69, 1856 38.52 against 39.92, 3200 65.37 against 66.58, 3456
 * 68.04 against 69.45; 512, 1600, 4096 within 0.3%. The square tile and the
 * small ones are not offered in place of the rules' tile: alone they won
 * too (the projections at 576 on the square tile, one a multiprocessor,
 * 0.129 against 0.132 ms), but in whole prefills they lost 1-13% (576,
 * 640, 240-400, 2112), where the weights come from memory, not from a
 * cache warm with the same product.
 */
function fastestUnsplit(M: number, N: number, K: number, plan: GemmPlan, ruled: GemmTile): GemmTile {
  let best = ruled;
  let bestUs = unsplitMicros(ruled, M, N, K);
  if (bestUs === undefined) return ruled;
  const [, next] = Object.values(plan.tiles);
  for (const t of [next, plan.wide]) {
    if (!t) continue;
    const us = unsplitMicros(t, M, N, K, true);
    // a tie (to rounding) goes to the candidate: the GLU at 3073-3328 models the same on the square
    // tile (9 a multiprocessor) and on 64x64 (33), and 3200 ran faster on 64x64
    if (us !== undefined && us <= bestUs * (1 + 1e-9)) [best, bestUs] = [t, us];
  }
  return best;
}

/** How full the last of its rounds leaves the GPU, over all of them: `workgroups` of which `round` run at once. */
const roundFill = (workgroups: number, round: number) => workgroups / (Math.ceil(workgroups / round) * round);

/** Workgroups of a product of M rows into N columns over `tile`, in `splits` slices of K. */
const workgroups = (t: GemmTile, M: number, N: number, splits: number) => Math.ceil(M / t.BM) * Math.ceil(N / t.BN) * splits;

/** The split counts whose slices of K keep at least plan.minSplitK each (none for one row: no split). */
const allowedSplits = (M: number, K: number, plan: GemmPlan, counts: readonly number[] = SPLIT_COUNTS) => (M > 1 ? counts.filter((s) => K / s >= plan.minSplitK) : []);

/** The first (largest) tile that gives ENOUGH_WORKGROUPS with `splits` slices of K, else the smallest. */
export function chooseTile(M: number, N: number, tiles: Record<string, GemmTile> = GEMM_TILES, splits = 1): GemmTile {
  const all = Object.values(tiles);
  for (const t of all) if (workgroups(t, M, N, splits) >= ENOUGH_WORKGROUPS) return t;
  return all[all.length - 1];
}

/**
 * Slices of K for a product of M rows into N columns: with too few output
 * tiles for the largest tile (short prompts), K is cut so that big,
 * efficient tiles still fill the GPU, instead of shrinking the tiles.
 */
export function chooseSplits(M: number, N: number, K: number, plan: GemmPlan = GEMM_PLAN): number {
  const big = Object.values(plan.tiles)[0];
  const allowed = allowedSplits(M, K, plan);
  return allowed.find((s) => workgroups(big, M, N, s) >= ENOUGH_WORKGROUPS) ?? allowed.at(-1) ?? 1;
}

/** chooseSplits' slices with chooseTile's tile for them: what the rules below fall back to. */
function splitThenTile(M: number, N: number, K: number, plan: GemmPlan): { tile: GemmTile; splits: number } {
  const splits = chooseSplits(M, N, K, plan);
  return { tile: chooseTile(M, N, plan.tiles, splits), splits };
}

/**
 * Tile and split-K count of the projections (q, k, v, g) and the GLU
 * product: where the big tile leaves a round of the GPU unfilled and the
 * next tile fits one round unsplit, the next tile unsplit (the same time or
 * less, and no partial sums for the next kernel to fold: T = 512, q, k, v,
 * g: 107 us either way; 704: 197 -> 135 us); the wide tile where it fills
 * its rounds much better than the big one; where the big tile runs more
 * than a round and the square tile fills its rounds to 80%, the square tile
 * unsplit; where the big tile leaves a second round less than half full,
 * the big tile in K slices; else chooseSplits' slices and chooseTile's tile.
 * Where these leave the product unsplit and the plan says retileUnsplit,
 * its tile is fastestUnsplit's.
 */
export function chooseProduct(M: number, N: number, K: number, plan: GemmPlan = GEMM_PLAN): { tile: GemmTile; splits: number } {
  const choice = productSplits(M, N, K, plan);
  return plan.retileUnsplit && choice.splits === 1 && M > 1 ? { tile: fastestUnsplit(M, N, K, plan, choice.tile), splits: 1 } : choice;
}

/** chooseProduct's rules, which decide the split; an unsplit product's tile is then fastestUnsplit's. */
function productSplits(M: number, N: number, K: number, plan: GemmPlan): { tile: GemmTile; splits: number } {
  const [big, next] = Object.values(plan.tiles);
  const whole = workgroups(big, M, N, 1);
  if (M > 1 && next && whole < ROUND.big) {
    const w = workgroups(next, M, N, 1);
    if (w >= ENOUGH_WORKGROUPS && w <= ROUND.next) return { tile: next, splits: 1 };
  }
  // one or two rounds of the big tile at most 90% full, where the wide tile fills its rounds
  // (T = 512 and 1024, GLU: 352 and 704 workgroups of 128x64, 256 and 512 of the wide tile)
  if (M > 1 && plan.wide && whole <= 2 * ROUND.big && roundFill(whole, ROUND.big) <= 0.9 && roundFill(workgroups(plan.wide, M, N, 1), ROUND.wide) >= 0.95)
    return { tile: plan.wide, splits: 1 };
  // more than a round of the big tile, where the square tile fills its rounds to 80%: that, unsplit
  // (metala-380m: the GLU at M = 513-768, 1153-1536, 1793-2304, ...: 5-6, 10-12, 15-18 rows of
  // 44 square tiles; the projections at 1025-1408, 2177-2816, 3329-4096; no slices to fold)
  if (M > 1 && plan.square && whole > ROUND.big && roundFill(workgroups(plan.square, M, N, 1), ROUND.square) >= 0.8) return { tile: plan.square, splits: 1 };
  // a second round less than half full: K slices until the last round is at most a third of the
  // work (GLU at M = 576-640: 440 workgroups 264-269 us, in 4 slices 236-238; 704-768: 528, 318-321
  // us, in 2 slices 267-269; both before the fold)
  if (whole > ROUND.big && whole <= 1.5 * ROUND.big) {
    const s = allowedSplits(M, K, plan).find((n) => whole * n >= 2.5 * ROUND.big);
    if (s) return { tile: big, splits: s };
  }
  return splitThenTile(M, N, K, plan);
}

/**
 * Tile and split-K count of a residual product (attention out and GLU down:
 * N = d, narrow, and down has the longest K). These run best with more,
 * shorter workgroups than chooseSplits gives them: where the plan has the
 * square tile, that tile in the fewest slices (2, 3, 4) whose workgroups
 * fill 84% of its rounds' slots and keep 80% of them on real rows, not on
 * the padding of the last row of tiles (SQUARE_TILE; metala-380m: 845-1024
 * in 4 slices, 1153-1408 in 3, 1690-2048 in 2, 2305-2816 in 3, 3072 in 4,
 * 3457-4096 in 2); or 80% on real rows alone, where the rules without it
 * leave the 64x64 tile unsplit (metala-1b's at 1127-1152). Until
 * 2026-11-30 it took only where 2 slices made 256 workgroups (M > 1920)
 * and filled its rounds to 90%; against that, H200, whole prefills, the
 * builds alternating calls in one process (best ms): 960 20.05 against
 * 20.50, 1024 21.48 against 21.83, 1344 26.76 against 28.60, 1856 37.59
 * against 38.51, 2400 50.07 against 50.55; 512, 1216, 2048, 3648 within
 * 0.3% (that was 85% of its rounds' slots filled, padded rows or not).
 * Then 84% against 85% (taking 7, 14 and 28 rows of tiles too): 864 19.70
 * against 19.92, 1728 35.66 against 36.52, 1792 37.23 against 38.15, 3520
 * 68.91 against 69.16, but 800 18.97 against 18.40 (96 of its 896 rows
 * padding), so 80% of the slots must be on real rows. 80% on real rows
 * alone also took 9, 18 and 27 rows of tiles, whose best slices fill 81.8%
 * (216 of 264, 432 of 528): slower at 1127-1152 (+0.4-0.6%), 2253-2304
 * (+1.4-1.6%) and 3400-3420 (+1.6-1.8%) than the tiles without it; for
 * metala-1b (N = 1536) likewise at 1520 (+1.8%), 2280 (+1.3%), 2880
 * (+0.9%), 3040 (+1.3%), 3400 (+2.9%), but faster at 1140 (69.52 against
 * 71.49 ms), where the alternative is 64x64 unsplit in 432 workgroups of
 * 660 places. Otherwise, as measured on an H200 at
 * M = 512 ... 4096 (metala-380m, best of 3 each), the largest tile where
 * some split of K gives it 1024 workgroups (M >= 2048), else the next tile
 * with the most slices that still fit one round (M = 512: 4, 704-1280: 2,
 * 1536: 1; before 3 slices were allowed, RESIDUAL_SPLIT_COUNTS) came within 1.5% of the best of 3 tiles x 3 splits for the pair
 * at M = 512, 1024, 2048, 4096, where chooseSplits' choice was 4.5-9.5%
 * slower (down at M = 2048: 406 us unsplit, 359 in 4 slices). Elsewhere (a
 * plan without a second tile, short chunks) it falls back to chooseSplits.
 */
export function chooseResidual(M: number, N: number, K: number, plan: GemmPlan = GEMM_PLAN): { tile: GemmTile; splits: number } {
  const allowed = allowedSplits(M, K, plan, RESIDUAL_SPLIT_COUNTS);
  const { square } = plan;
  if (!square) return residualWithout(M, N, K, plan, allowed);
  const filled = (n: number) => roundFill(workgroups(square, M, N, n), ROUND.square);
  // the share of its rounds' slots doing real rows (not the padding of the last row of tiles)
  const useful = (n: number) => (M / (Math.ceil(M / square.BM) * square.BM)) * filled(n);
  const fits = allowed.filter((n) => n > 1 && useful(n) >= 0.8);
  // the fewest of those that fill 84% of its rounds
  const s = fits.find((n) => filled(n) >= 0.84);
  if (s) return { tile: square, splits: s };
  // else any of them, where the other tiles would run 64x64 unsplit
  const other = residualWithout(M, N, K, plan, allowed);
  const [, next] = Object.values(plan.tiles);
  return fits.length > 0 && other.tile === next && other.splits === 1 ? { tile: square, splits: fits[0] } : other;
}

/** chooseResidual's choice from the plan's tiles but the square one. */
function residualWithout(M: number, N: number, K: number, plan: GemmPlan, allowed: number[]): { tile: GemmTile; splits: number } {
  const [big, next] = Object.values(plan.tiles);
  const bigSplit = allowed.find((s) => workgroups(big, M, N, s) >= 1024);
  if (bigSplit) return { tile: big, splits: bigSplit };
  // the most slices whose workgroups fill the GPU and still fit one round
  const nextSplit = next && [...allowed].reverse().find((s) => workgroups(next, M, N, s) >= ENOUGH_WORKGROUPS && workgroups(next, M, N, s) <= ROUND.next);
  if (nextSplit) return { tile: next, splits: nextSplit };
  return splitThenTile(M, N, K, plan);
}

export const GEMM_BINDINGS: BindingKind[] = ["uniform", "uniform", "read", "read", "read", "rw"];

export type GemmEpilogue = "store" | "add" | "glu";
const EPILOGUE_CODE: Record<GemmEpilogue, number> = { store: 0, add: 1, glu: 2 };

/**
 * How a weight matrix is stored on the device: f32; f16 two to a u32 (read
 * with unpack2x16float); q8 / q4 with a scale per 32 elements (quantize.ts).
 */
export type WeightType = "f32" | "f16" | "q8" | "q4";

/** The quantized types bind their scales as a seventh buffer. */
export function gemmBindings(wtype: WeightType): BindingKind[] {
  return wtype === "q8" || wtype === "q4" ? [...GEMM_BINDINGS, "read"] : GEMM_BINDINGS;
}

/** The WGSL that reads W in each storage type. */
function weightFiles(wtype: WeightType): string[] {
  return wtype === "q8" || wtype === "q4" ? ["weights-quant.wgsl", `weights-${wtype}.wgsl`] : [`weights-${wtype}.wgsl`];
}

export function gemmSpec(tile: GemmTile, epilogue: GemmEpilogue, act: GluActivation = "silu", wtype: WeightType = "f32", split = false) {
  return {
    files: ["math.wgsl", "activations.wgsl", ...weightFiles(wtype), "gemm-io.wgsl", "gemm.wgsl"],
    defs: { ...tile, EPILOGUE: EPILOGUE_CODE[epilogue], SPLIT: split },
    extra: gluActSource(act),
    bindings: gemmBindings(wtype),
  };
}

/**
 * Invocations per output row of shaders/gemv.wgsl (the M = 1 form), whose
 * workgroups hold 256 / lanes rows: 64 for products of few rows, so that
 * their few workgroups still keep enough loads of W in flight. Measured on
 * H200 decode steps, 24 layers: out (1024 x 1024) 0.155 -> 0.141 ms and
 * down (1024 x 2816) 0.25 -> 0.21 with 64 lanes; the 3072- and 5632-row
 * products as fast or faster with 32.
 */
export function gemvLanes(N: number): number {
  return N < 2048 ? 64 : 32;
}

/** Rows per workgroup of shaders/gemv.wgsl: its 256 invocations over gemvLanes(N) each. */
const gemvRows = (N: number) => 256 / gemvLanes(N);

/** The matrix-vector kernel's bindings: the GEMM's, then with the in-kernel norm its weight and bias. */
function gemvBindings(wtype: WeightType, norm: boolean): BindingKind[] {
  return norm ? [...gemmBindings(wtype), "read", "read"] : gemmBindings(wtype);
}

/**
 * The matrix-vector kernel: its input row as stored, or (`norm`) the raw
 * residual stream normalised in the kernel, which saves a decode step the
 * norm's own dispatch (its weight and bias then bind after the others).
 */
export function gemvSpec(N: number, epilogue: GemmEpilogue, act: GluActivation = "silu", wtype: WeightType = "f32", norm?: { layernorm: boolean }) {
  const base = gemmBindings(wtype);
  return {
    files: ["math.wgsl", "activations.wgsl", ...weightFiles(wtype), "gemm-io.wgsl", ...(norm ? ["reduce.wgsl", "gemv-input-norm.wgsl"] : ["gemv-input.wgsl"]), "gemv.wgsl"],
    defs: { LANES: gemvLanes(N), RB: gemvRows(N), EPILOGUE: EPILOGUE_CODE[epilogue], ...(norm ? { LAYERNORM: norm.layernorm, NORM_BINDING: base.length } : {}) },
    extra: gluActSource(act),
    bindings: gemvBindings(wtype, !!norm),
  };
}

export interface GemmParts {
  rows: BufferPart;
  A: BufferPart;
  W: BufferPart;
  bias: BufferPart;
  C: BufferPart;
  /** q8 / q4 only: the per-group scales of W. */
  scales?: BufferPart;
  /**
   * Decode only: the one-token product reads this un-normalised row instead
   * of A and applies the norm (weight w, bias b) itself.
   */
  gemvNorm?: { A: BufferPart; w: BufferPart; b: BufferPart; layernorm: boolean };
  /**
   * Where split-K slices store their bare sums ([splits][M][N]), for the
   * kernel that reads the product next to complete it (bias and epilogue
   * included): norm-residual-io.wgsl, gla-decay-key.wgsl, glu-fold.wgsl.
   */
  partials?: BufferPart;
}

export interface GemmShape {
  /** Output columns (for "glu": the interleaved l1/l2 rows, twice the output width). */
  N: number;
  K: number;
  /** Row strides in floats. */
  lda: number;
  ldc: number;
  aOff?: number;
  cOff?: number;
  wOff?: number;
  bOff?: number;
}

/**
 * The forms of the tiles a product's pipelines are built for, unsplit and
 * split over K (the ones its launch rule picks at some chunk length: see
 * launchForms in forward.ts); without them, every tile both ways.
 */
export interface GemmForms {
  unsplit: ReadonlySet<GemmTile>;
  split: ReadonlySet<GemmTile>;
}

/**
 * One projection bound to its buffers: C (op)= A W^T + bias, with M (rows)
 * read from the `rows` uniform at run time, so the same bind group serves
 * every chunk length.
 */
export class GemmOp {
  private readonly pipelines = new Map<GemmTile, GPUComputePipeline>();
  private readonly splitPipelines = new Map<GemmTile, GPUComputePipeline>();
  private readonly bindGroup: GPUBindGroup;
  private readonly gemvBindGroup: GPUBindGroup;
  private readonly splitBindGroup?: GPUBindGroup;
  readonly params: GPUBuffer;

  private constructor(
    private readonly shape: GemmShape,
    readonly epilogue: GemmEpilogue,
    private readonly tiles: Record<string, GemmTile>,
    pipes: [GemmTile, GPUComputePipeline][],
    splitPipes: [GemmTile, GPUComputePipeline][],
    private readonly gemv: GPUComputePipeline,
    p: Pipelines,
    parts: GemmParts,
    wtype: WeightType,
  ) {
    for (const [t, pl] of pipes) this.pipelines.set(t, pl);
    for (const [t, pl] of splitPipes) this.splitPipelines.set(t, pl);
    const s = shape;
    this.params = uniformU32(p.device, [s.N, s.K, s.lda, s.ldc, s.aOff ?? 0, s.cOff ?? 0, s.wOff ?? 0, s.bOff ?? 0], "gemm params");
    const list = [this.params, parts.rows, parts.A, parts.W, parts.bias, parts.C];
    if (gemmBindings(wtype).length > list.length) {
      if (!parts.scales) throw new Error(`a ${wtype} GEMM needs its scales`);
      list.push(parts.scales);
    }
    this.bindGroup = p.bindGroup(gemmBindings(wtype), list, "gemm");
    if (parts.partials) this.splitBindGroup = p.bindGroup(gemmBindings(wtype), list.map((b, i) => (i === 5 ? parts.partials! : b)), "gemm split");
    const n = parts.gemvNorm;
    this.gemvBindGroup = n ? p.bindGroup(gemvBindings(wtype, true), [list[0], list[1], n.A, ...list.slice(3), n.w, n.b], "gemv norm") : this.bindGroup;
  }

  static async create(
    p: Pipelines,
    shape: GemmShape,
    epilogue: GemmEpilogue,
    act: GluActivation,
    parts: GemmParts,
    tiles: Record<string, GemmTile> = GEMM_TILES,
    wtype: WeightType = "f32",
    forms?: GemmForms,
  ): Promise<GemmOp> {
    const built = (split: boolean) => Object.values(tiles).filter((t) => !forms || (split ? forms.split : forms.unsplit).has(t));
    const variants = (split: boolean) => Promise.all(built(split).map(async (t) => [t, await p.pipeline(gemmSpec(t, epilogue, act, wtype, split))] as [GemmTile, GPUComputePipeline]));
    const pipes = await variants(false);
    const splitPipes = parts.partials ? await variants(true) : [];
    const gemv = await p.pipeline(gemvSpec(shape.N, epilogue, act, wtype, parts.gemvNorm && { layernorm: parts.gemvNorm.layernorm }));
    return new GemmOp(shape, epilogue, tiles, pipes, splitPipes, gemv, p, parts, wtype);
  }

  /**
   * Records the product for M rows (M must equal the value in the rows
   * uniform when this runs): the matrix-vector kernel for one row, else the
   * tiled kernel (`tile` forces a tile shape, for tests and benchmarks).
   * With `splits` > 1 the K slices' sums go to the partials buffer and C is
   * left for the next norm to complete.
   */
  encode(pass: GPUComputePassEncoder, M: number, tile?: GemmTile, splits = 1): void {
    if (M === 1 && !tile && splits === 1) {
      pass.setPipeline(this.gemv);
      pass.setBindGroup(0, this.gemvBindGroup);
      pass.dispatchWorkgroups(Math.ceil(this.shape.N / gemvRows(this.shape.N)));
      return;
    }
    tile ??= chooseTile(M, this.shape.N, this.tiles, splits);
    if (splits > 1 && !this.splitBindGroup) throw new Error("this product has no partials buffer to split K into");
    const pipeline = (splits > 1 ? this.splitPipelines : this.pipelines).get(tile);
    if (!pipeline) throw new Error(`this product has no ${splits > 1 ? "split" : "unsplit"} pipeline for a ${tile.BM}x${tile.BN} tile`);
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, splits > 1 ? this.splitBindGroup! : this.bindGroup);
    pass.dispatchWorkgroups(Math.ceil(this.shape.N / tile.BN), Math.ceil(M / tile.BM), splits);
  }

  destroy(): void {
    this.params.destroy();
  }
}
