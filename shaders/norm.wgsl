// The pre-norms and the final norm, one workgroup per token row:
//   LAYERNORM false: x / sqrt(mean(x^2) + 1e-6)       ("simplermsnorm", no weight)
//   LAYERNORM true:  (x - mean) / sqrt(var + 1e-5) * w + b   (nn.LayerNorm)
// Rows dims.start .. dims.start + dims.T of X go to rows 0.. of Y (the
// final norm reads only the rows whose logits are wanted).
// Host constants: D, LAYERNORM: bool. The bindings of X and Dims, and
// fold_residual, come from norm-io.wgsl (X as it is) or norm-residual-io.wgsl
// (X first gets the split-K partial sums of the product before it).

@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;

const NT: u32 = 256u;

@compute @workgroup_size(NT)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let src = (dims.start + wid.x) * D;
  let dst = wid.x * D;
  // each invocation touches the same elements (i = tid + j NT) below: no barrier needed
  fold_residual(dims.start + wid.x, tid);
  if (LAYERNORM) {
    var s = 0.0;
    // (a constant trip count, not i < D from tid: the compiler unrolls it and issues the loads together)
    for (var k_ = 0u; k_ < (D + NT - 1u) / NT; k_++) {
      let i = tid + NT * k_;
      if (i >= D) { break; }
      s += X[src + i];
    }
    let mean = sum_all(s, tid) / f32(D);
    var q = 0.0;
    for (var k_ = 0u; k_ < (D + NT - 1u) / NT; k_++) {
      let i = tid + NT * k_;
      if (i >= D) { break; }
      let e = X[src + i] - mean;
      q += e * e;
    }
    let inv = inverseSqrt(sum_all(q, tid) / f32(D) + 1e-5);
    for (var k_ = 0u; k_ < (D + NT - 1u) / NT; k_++) {
      let i = tid + NT * k_;
      if (i >= D) { break; }
      Y[dst + i] = (X[src + i] - mean) * inv * w[i] + bias[i];
    }
  } else {
    var q = 0.0;
    for (var k_ = 0u; k_ < (D + NT - 1u) / NT; k_++) {
      let i = tid + NT * k_;
      if (i >= D) { break; }
      q += X[src + i] * X[src + i];
    }
    let inv = inverseSqrt(sum_all(q, tid) / f32(D) + 1e-6);
    for (var k_ = 0u; k_ < (D + NT - 1u) / NT; k_++) {
      let i = tid + NT * k_;
      if (i >= D) { break; }
      Y[dst + i] = X[src + i] * inv;
    }
  }
}
