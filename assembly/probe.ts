import { madd } from "./simd";
import { I8_INPUT, INT_INPUT, mac, matMatFormat } from "./matmat";

// Memory read bandwidth probe: the loads the mat-vec kernels issue (128-bit,
// sequential, four streams in flight, as four weight rows are), over blocks
// [r0, r1) of `blockBytes` each, every block read as four quarters side by
// side. The xor of everything read goes to out[tid] so that the loads
// cannot be optimised away.
export function readBandwidth(base: usize, blockBytes: i32, out: usize, r0: i32, r1: i32, tid: i32): void {
  let a = i32x4.splat(0), b = i32x4.splat(0), c = i32x4.splat(0), d = i32x4.splat(0);
  const q = <usize>blockBytes >> 2;
  for (let r = r0; r < r1; r++) {
    const p0 = base + <usize>r * <usize>blockBytes;
    const p1 = p0 + q, p2 = p1 + q, p3 = p2 + q;
    for (let o: usize = 0; o < q; o += 32) {
      a = v128.xor(a, v128.load(p0 + o));
      b = v128.xor(b, v128.load(p1 + o));
      c = v128.xor(c, v128.load(p2 + o));
      d = v128.xor(d, v128.load(p3 + o));
      a = v128.xor(a, v128.load(p0 + o, 16));
      b = v128.xor(b, v128.load(p1 + o, 16));
      c = v128.xor(c, v128.load(p2 + o, 16));
      d = v128.xor(d, v128.load(p3 + o, 16));
    }
  }
  v128.store(out + (<usize>tid << 4), v128.xor(v128.xor(a, b), v128.xor(c, d)));
}

// `rounds` times over the 512 bytes of weight vectors at w: per 32 bytes
// (2 vectors) 8 of the tile's multiply-adds (matmat.ts mac<T>) against 4 token vectors held in registers,
// into 8 independent accumulators (each instruction pair's add, the only
// link between iterations, has a latency of at most 4 cycles; with the
// operands 14 of V8's 15 allocatable xmm registers on x64). The weights are
// loaded from L1 as the tile loads them: loads cost load ports only, and keep
// the optimisers from hoisting a product of loop invariants out of the loop.
// (Two steps per iteration would leave less to the loop's own instructions,
// but Binaryen then moves the second step's loads up, and the 4 weight
// vectors live at once spill an accumulator.)
function peakLoop<T>(w: usize, x: usize, rounds: i32, out: usize): void {
  const u0 = v128.load(x), u1 = v128.load(x, 16), u2 = v128.load(x, 32), u3 = v128.load(x, 48);
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
  let b0 = i32x4.splat(0), b1 = i32x4.splat(0), b2 = i32x4.splat(0), b3 = i32x4.splat(0);
  for (let r = 0; r < rounds; r++) {
    for (let p = w, end = w + 512; p < end; p += 32) {
      const wa = v128.load(p), wb = v128.load(p, 16);
      a0 = mac<T>(a0, wa, u0); b0 = mac<T>(b0, wb, u0);
      a1 = mac<T>(a1, wa, u1); b1 = mac<T>(b1, wb, u1);
      a2 = mac<T>(a2, wa, u2); b2 = mac<T>(b2, wb, u2);
      a3 = mac<T>(a3, wa, u3); b3 = mac<T>(b3, wb, u3);
    }
  }
  const s = v128.xor(v128.xor(v128.xor(a0, a1), v128.xor(a2, a3)), v128.xor(v128.xor(b0, b1), v128.xor(b2, b3)));
  v128.store(out, v128.xor(v128.load(out), s));
}

// The fused multiply-add (relaxed build, f32) chains each accumulator
// through the whole instruction (4 cycles on x64, 2 issued per cycle), so
// 8 accumulators leave no slack (measured 12% below this loop); having no
// separate product to hoist, it needs no loads: `rounds` times 48 fused
// multiply-adds of 3 operands held in registers into 12 accumulators (all
// 15 allocatable xmm registers; 48 rather than 24 per iteration measured 5%
// faster, the loop's own instructions taking fewer issue slots).
function fusedPeakLoop(x: usize, rounds: i32, out: usize): void {
  const u = v128.load(x), v = v128.load(x, 16), w = v128.load(x, 32);
  let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
  for (let r = 0; r < rounds; r++) {
    a0 = madd(u, v, a0); a1 = madd(u, w, a1); a2 = madd(v, w, a2); a3 = madd(u, v, a3);
    a4 = madd(u, w, a4); a5 = madd(v, w, a5); a6 = madd(u, v, a6); a7 = madd(u, w, a7);
    a8 = madd(v, w, a8); a9 = madd(u, v, a9); a10 = madd(u, w, a10); a11 = madd(v, w, a11);
    a0 = madd(u, v, a0); a1 = madd(u, w, a1); a2 = madd(v, w, a2); a3 = madd(u, v, a3);
    a4 = madd(u, w, a4); a5 = madd(v, w, a5); a6 = madd(u, v, a6); a7 = madd(u, w, a7);
    a8 = madd(v, w, a8); a9 = madd(u, v, a9); a10 = madd(u, w, a10); a11 = madd(v, w, a11);
    a0 = madd(u, v, a0); a1 = madd(u, w, a1); a2 = madd(v, w, a2); a3 = madd(u, v, a3);
    a4 = madd(u, w, a4); a5 = madd(v, w, a5); a6 = madd(u, v, a6); a7 = madd(u, w, a7);
    a8 = madd(v, w, a8); a9 = madd(u, v, a9); a10 = madd(u, w, a10); a11 = madd(v, w, a11);
    a0 = madd(u, v, a0); a1 = madd(u, w, a1); a2 = madd(v, w, a2); a3 = madd(u, v, a3);
    a4 = madd(u, w, a4); a5 = madd(v, w, a5); a6 = madd(u, v, a6); a7 = madd(u, w, a7);
    a8 = madd(v, w, a8); a9 = madd(u, v, a9); a10 = madd(u, w, a10); a11 = madd(v, w, a11);
  }
  const s = v128.xor(v128.xor(v128.xor(a0, a1), v128.xor(a2, a3)), v128.xor(v128.xor(a4, a5), v128.xor(a6, a7)));
  v128.store(out, v128.xor(v128.load(out), v128.xor(s, v128.xor(v128.xor(a8, a9), v128.xor(a10, a11)))));
}

/** Multiply-adds of one round of macPeak for a matrix stored as `fmt`: 128 instructions of 16, 8 or 4 (48 fused ones of 4). */
export function macPeakPerRound(fmt: i32): i32 {
  const f = matMatFormat(fmt);
  if (ASC_FEATURE_RELAXED_SIMD && f & I8_INPUT) return 128 * 16;
  if (f & INT_INPUT) return 128 * 8;
  return ASC_FEATURE_RELAXED_SIMD ? 48 * 4 : 128 * 4;
}

/**
 * Peak multiply-add rate probe: the instruction sequence of matMat's inner
 * loop for a matrix stored as `fmt`, on the path matMatFormat picks in this
 * build, with its operands in registers and L1: `rounds` rounds of
 * macPeakPerRound(fmt) multiply-adds per unit of [r0, r1). w: 512 bytes of weight
 * vectors, x: 64 bytes of token vectors (any values that are not f32
 * subnormals); out[tid] (16 bytes) takes the xor of the sums.
 */
export function macPeak(fmt: i32, w: usize, x: usize, rounds: i32, out: usize, r0: i32, r1: i32, tid: i32): void {
  const f = matMatFormat(fmt);
  const o = out + (<usize>tid << 4);
  for (let r = r0; r < r1; r++) {
    if (ASC_FEATURE_RELAXED_SIMD && f & I8_INPUT) peakLoop<i8>(w, x, rounds, o);
    else if (f & INT_INPUT) peakLoop<i32>(w, x, rounds, o);
    else if (ASC_FEATURE_RELAXED_SIMD) fusedPeakLoop(x, rounds, o);
    else peakLoop<f32>(w, x, rounds, o);
  }
}
