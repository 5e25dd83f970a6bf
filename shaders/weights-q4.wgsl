// The weight matrix of gemm.wgsl / gemv.wgsl quantized to 4 bits: eight
// nibbles per u32 (row-major, element 0 in the low nibble), each q + 8 with
// q in -7..7, w = q * scale with the group's scale (weights-quant.wgsl:
// max |w| / 7). Dequantized as the tiles load; the arithmetic is f32.
// load_w(i) is elements 4i .. 4i+3.

@group(0) @binding(3) var<storage, read> W: array<u32>;

fn load_w(i: u32) -> vec4<f32> {
  let h = (W[i / 2u] >> ((i % 2u) * 16u)) & 0xffffu;
  let q = vec4<f32>(vec4<u32>(h & 15u, (h >> 4u) & 15u, (h >> 8u) & 15u, h >> 12u)) - 8.0;
  return q * group_scale(i);
}
