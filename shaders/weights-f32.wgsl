// The weight matrix of gemm.wgsl / gemv.wgsl stored as f32: load_w(i) is
// elements 4i .. 4i+3.

@group(0) @binding(3) var<storage, read> W: array<vec4<f32>>;

fn load_w(i: u32) -> vec4<f32> {
  return W[i];
}
