// Scalar helpers shared by several kernels. WGSL has no erf, log1p or expm1:
// these keep full f32 relative precision where the naive forms lose it.

fn sigmoid(x: f32) -> f32 {
  // exp of a non-positive argument only: no overflow for large |x|
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

fn silu(x: f32) -> f32 {
  return x * sigmoid(x);
}

// ln(1 + y) for y >= 0. WGSL's log may be off by 2^-21 absolute near 1, which
// is 3e-5 relative for log(1 + 0.016), so up to y = 1 it is the series of
// 2 atanh(s), s = y / (2 + y) <= 1/3, to s^15 (within 2e-9 relative).
fn log1p_f(y: f32) -> f32 {
  if (y > 1.0) { return log(1.0 + y); }
  let s = y / (2.0 + y);
  let z = s * s;
  let p = 1.0 / 13.0 + z * (1.0 / 15.0);
  return 2.0 * s * (1.0 + z * (1.0 / 3.0 + z * (1.0 / 5.0 + z * (1.0 / 7.0 + z * (1.0 / 9.0 + z * (1.0 / 11.0 + z * p))))));
}

// exp(x) - 1 for x <= 0: the Taylor series to x^8 above -1/2 (within 2e-8
// relative; exp(x) - 1 there would lose up to 1e-4 near -1e-3), exp(x) - 1 below.
fn expm1_f(x: f32) -> f32 {
  if (x > -0.5) {
    return x * (1.0 + x * (1.0 / 2.0 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0 + x * (1.0 / 720.0 + x * (1.0 / 5040.0 + x * (1.0 / 40320.0))))))));
  }
  return exp(x) - 1.0;
}

// log(sigmoid(x)) = min(x, 0) - log(1 + exp(-|x|))
fn logsigmoid(x: f32) -> f32 {
  return min(x, 0.0) - log1p_f(exp(-abs(x)));
}

// Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7)
fn erf_f(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * z);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  let r = 1.0 - poly * exp(-z * z);
  return select(-r, r, x >= 0.0);
}
