// The input row of gemv.wgsl normalised on the fly (what norm.wgsl does for
// a chunk), so that a decode step needs no separate norm dispatch: every
// workgroup reduces the K inputs itself (4 KB at d = 1024, against the 32 KB
// of weights each workgroup reads anyway).
//   LAYERNORM false: x / sqrt(mean(x^2) + 1e-6);  true: (x - mean) / sqrt(var + 1e-5) * nw + nb
// Needs reduce.wgsl with NT = the workgroup size. Host constants: LAYERNORM: bool, NORM_BINDING
// (the first free binding: the norm weight there, its bias at the next).

@group(0) @binding(NORM_BINDING) var<storage, read> nw: array<vec4<f32>>;
@group(0) @binding(NORM_BINDING + 1u) var<storage, read> nb: array<vec4<f32>>;

var<private> a_mean: f32;
var<private> a_inv: f32;

fn prepare_a(tid: u32) {
  let a0 = p.a_off / 4u;
  let K4 = p.K / 4u;
  a_mean = 0.0;
  if (LAYERNORM) {
    var s = vec4<f32>(0.0);
    for (var k = tid; k < K4; k += NT) { s += A[a0 + k]; }
    a_mean = sum_all(s.x + s.y + s.z + s.w, tid) / f32(p.K);
    var q = vec4<f32>(0.0);
    for (var k = tid; k < K4; k += NT) { let e = A[a0 + k] - a_mean; q = fma(e, e, q); }
    a_inv = inverseSqrt(sum_all(q.x + q.y + q.z + q.w, tid) / f32(p.K) + 1e-5);
  } else {
    var q = vec4<f32>(0.0);
    for (var k = tid; k < K4; k += NT) { let x = A[a0 + k]; q = fma(x, x, q); }
    a_inv = inverseSqrt(sum_all(q.x + q.y + q.z + q.w, tid) / f32(p.K) + 1e-6);
  }
}

fn load_a(i: u32) -> vec4<f32> {
  let x = (A[i] - a_mean) * a_inv;
  if (LAYERNORM) {
    let j = i - p.a_off / 4u;
    return fma(x, nw[j], nb[j]);
  }
  return x;
}
