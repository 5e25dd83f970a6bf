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

fn log1p_f(y: f32) -> f32 {
  if (y < 1e-3) {
    return y * (1.0 - y * (0.5 - y * (1.0 / 3.0 - y * 0.25)));
  }
  return log(1.0 + y);
}

// exp(x) - 1 for x <= 0
fn expm1_f(x: f32) -> f32 {
  if (x > -1e-3) {
    return x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0))));
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
