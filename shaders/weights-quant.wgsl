// What the quantized weight formats (weights-q8.wgsl, weights-q4.wgsl) share:
// one f32 scale per group of 32 consecutive elements of a row, bound after
// the matrix. group_scale(i) is the scale of elements 4i .. 4i+3 (never across
// a row or a group: K % 4 == 0).

@group(0) @binding(6) var<storage, read> wscale: array<f32>;

fn group_scale(i: u32) -> f32 {
  let e = i * 4u - p.w_off;
  let row = e / p.K;
  let k = e - row * p.K;
  return wscale[row * ((p.K + 31u) / 32u) + k / 32u];
}
