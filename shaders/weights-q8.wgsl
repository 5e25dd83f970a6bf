// The weight matrix of gemm.wgsl / gemv.wgsl quantized to 8 bits: four
// signed bytes per u32 (row-major, element 0 in the low byte), w = q / 127 *
// scale with the group's scale (weights-quant.wgsl: max |w| of the group).
// Dequantized as the tiles load; the arithmetic is f32.
// load_w(i) is elements 4i .. 4i+3.

@group(0) @binding(3) var<storage, read> W: array<u32>;

fn load_w(i: u32) -> vec4<f32> {
  return unpack4x8snorm(W[i]) * group_scale(i);
}
