// Small SIMD helpers shared by the kernels. The relaxed build swaps the
// separate multiply and add for one fused multiply-add; the choice is made at
// compile time, so each build contains only the instructions it may use.

/** a * b + c on four f32 lanes. */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Sum of the four f32 lanes. */
// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  const s = f32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/**
 * e^x on four lanes: x = n ln2 + r with |r| <= ln2 / 2, e^r by its degree-6
 * polynomial (Cephes' expf coefficients), 2^n put into the exponent bits.
 * Within 2 ulp of expf; x is clamped to [-87, 88], so huge negative inputs
 * give ~1e-38 instead of 0 and nothing overflows. The clamp by pmin/pmax
 * (NaN still passes through), n by adding and subtracting 1.5 * 2^23 (round
 * to nearest even, as f32x4.nearest, for |n| < 2^22) and its integer from
 * the sum's bits: the same values for 6 instructions where f32x4.min, max
 * and trunc_sat cost V8 ~23 (the GLU, conv and token mixer are bound by
 * this function).
 */
// @ts-ignore: decorator
@inline export function exp4(v: v128): v128 {
  const x = f32x4.pmax(f32x4.pmin(v, f32x4.splat(88)), f32x4.splat(-87));
  const magic = f32x4.splat(12582912);
  const big = f32x4.add(f32x4.mul(x, f32x4.splat(1.4426950408889634)), magic);
  const n = f32x4.sub(big, magic);
  // ln2 in two parts: n * 0.693359375 is exact, the rest is small
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375))), f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = madd(f32x4.splat(1.9875691500e-4), r, f32x4.splat(1.3981999507e-3));
  p = madd(p, r, f32x4.splat(8.3334519073e-3));
  p = madd(p, r, f32x4.splat(4.1665795894e-2));
  p = madd(p, r, f32x4.splat(1.6666665459e-1));
  p = madd(p, r, f32x4.splat(5.0000001201e-1));
  p = madd(p, f32x4.mul(r, r), f32x4.add(r, f32x4.splat(1)));
  // big's bits are those of 1.5 * 2^23 (0x4b400000) plus n
  return f32x4.mul(p, i32x4.shl(i32x4.sub(big, i32x4.splat(0x4b400000 - 127)), 23));
}

/** 1 / (1 + e^-x) on four lanes. */
// @ts-ignore: decorator
@inline export function sigmoid4(x: v128): v128 {
  return f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), exp4(f32x4.neg(x))));
}

/** x * sigmoid(x) on four lanes. */
// @ts-ignore: decorator
@inline export function silu4(x: v128): v128 {
  return f32x4.div(x, f32x4.add(f32x4.splat(1), exp4(f32x4.neg(x))));
}

/**
 * ln x on four lanes for positive normal x (Cephes' logf): x = m 2^e with m
 * in [sqrt(1/2), sqrt(2)), ln m by its polynomial in m - 1. Within 2 ulp.
 */
// @ts-ignore: decorator
@inline export function log4(x: v128): v128 {
  let e = i32x4.sub(i32x4.shr_u(x, 23), i32x4.splat(126));
  let m = v128.or(v128.and(x, i32x4.splat(0x007fffff)), i32x4.splat(0x3f000000)); // [0.5, 1)
  const low = f32x4.lt(m, f32x4.splat(0.7071067811865476)); // all ones where m < sqrt(1/2)
  e = i32x4.add(e, low); // e - 1 there
  m = f32x4.sub(f32x4.add(m, v128.and(low, m)), f32x4.splat(1)); // 2m - 1 there, else m - 1
  const ef = f32x4.convert_i32x4_s(e);
  const z = f32x4.mul(m, m);
  let p = madd(f32x4.splat(7.0376836292e-2), m, f32x4.splat(-1.1514610310e-1));
  p = madd(p, m, f32x4.splat(1.1676998740e-1));
  p = madd(p, m, f32x4.splat(-1.2420140846e-1));
  p = madd(p, m, f32x4.splat(1.4249322787e-1));
  p = madd(p, m, f32x4.splat(-1.6668057665e-1));
  p = madd(p, m, f32x4.splat(2.0000714765e-1));
  p = madd(p, m, f32x4.splat(-2.4999993993e-1));
  p = madd(p, m, f32x4.splat(3.3333331174e-1));
  let y = f32x4.mul(f32x4.mul(p, m), z);
  y = madd(ef, f32x4.splat(-2.12194440e-4), y);
  y = madd(f32x4.splat(-0.5), z, y);
  return madd(ef, f32x4.splat(0.693359375), f32x4.add(m, y));
}

/** ln(1 + x) on four lanes for x >= 0, to full relative precision for tiny x (ln(u) x / (u - 1) with u = 1 + x). */
// @ts-ignore: decorator
@inline export function log1p4(x: v128): v128 {
  const u = f32x4.add(f32x4.splat(1), x);
  const d = f32x4.sub(u, f32x4.splat(1));
  const r = f32x4.div(f32x4.mul(log4(u), x), d);
  return v128.bitselect(x, r, f32x4.eq(d, f32x4.splat(0)));
}

/**
 * e^x - 1 on four lanes for x <= 0, to full relative precision near 0
 * (Taylor to x^8 above -1/2, where it is within 2e-8); ex is exp4(x), which
 * the caller has anyway (decayKey's alpha), so that it is not computed twice.
 */
// @ts-ignore: decorator
@inline export function expm1Neg4(x: v128, ex: v128): v128 {
  let p = madd(x, f32x4.splat(<f32>(1.0 / 40320)), f32x4.splat(<f32>(1.0 / 5040)));
  p = madd(p, x, f32x4.splat(<f32>(1.0 / 720)));
  p = madd(p, x, f32x4.splat(<f32>(1.0 / 120)));
  p = madd(p, x, f32x4.splat(<f32>(1.0 / 24)));
  p = madd(p, x, f32x4.splat(<f32>(1.0 / 6)));
  p = madd(p, x, f32x4.splat(0.5));
  p = madd(p, x, f32x4.splat(1));
  const near = f32x4.mul(p, x);
  const far = f32x4.sub(ex, f32x4.splat(1));
  return v128.bitselect(near, far, f32x4.gt(x, f32x4.splat(-0.5)));
}
