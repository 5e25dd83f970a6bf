// Peak rate of f32 multiply-adds, the instruction the GEMM spends its time
// on: every thread runs 8 independent vec4 chains x = fma(x, m, c) for ITER
// steps (enough independent work that a GPU issues one every cycle) and
// writes their sum, so nothing can be left out. The chains are 8 variables,
// not an array: an array indexed in a loop the compiler does not unroll
// would leave registers (16 chains in an array ran at 0.70x on an H200).
// m and c come from a buffer, so nothing folds; with m = c = 1 each
// thread's sum is 4 * (0 + 1 + ... + 7) + 32 * ITER, which a test checks.
// Host constant: ITER.

@group(0) @binding(0) var<storage, read> mc: array<vec4<f32>, 2>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m = mc[0];
  let c = mc[1];
  var x0 = vec4<f32>(0.0);
  var x1 = vec4<f32>(1.0);
  var x2 = vec4<f32>(2.0);
  var x3 = vec4<f32>(3.0);
  var x4 = vec4<f32>(4.0);
  var x5 = vec4<f32>(5.0);
  var x6 = vec4<f32>(6.0);
  var x7 = vec4<f32>(7.0);
  for (var i = 0u; i < ITER; i++) {
    x0 = fma(x0, m, c);
    x1 = fma(x1, m, c);
    x2 = fma(x2, m, c);
    x3 = fma(x3, m, c);
    x4 = fma(x4, m, c);
    x5 = fma(x5, m, c);
    x6 = fma(x6, m, c);
    x7 = fma(x7, m, c);
  }
  let s = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
  dst[gid.x] = s.x + s.y + s.z + s.w;
}
