// The weight matrix of gemm.wgsl / gemv.wgsl quantized to 8 bits: four
// signed bytes per u32 (row-major, element 0 in the low byte) and one f32
// scale per group of 32 consecutive elements of a row (the group's max |w|,
// so w = q / 127 * scale). Dequantized as the tiles load; the arithmetic is f32.
// load_w(i) is elements 4i .. 4i+3 (never across a row: K % 4 == 0).

@group(0) @binding(3) var<storage, read> W: array<u32>;
@group(0) @binding(6) var<storage, read> wscale: array<f32>;

fn load_w(i: u32) -> vec4<f32> {
  let e = i * 4u - p.w_off;
  let row = e / p.K;
  let k = e - row * p.K;
  let s = wscale[row * ((p.K + 31u) / 32u) + k / 32u];
  return unpack4x8snorm(W[i]) * s;
}
