// The weight matrix of gemm.wgsl / gemv.wgsl stored as f16, two to a u32
// (pack2x16float layout), for adapters without the shader-f16 feature: half
// the memory and the bandwidth of f32, the arithmetic still f32.
// load_w(i) is elements 4i .. 4i+3.

@group(0) @binding(3) var<storage, read> W: array<vec2<u32>>;

fn load_w(i: u32) -> vec4<f32> {
  let w = W[i];
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}
