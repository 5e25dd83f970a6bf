// Short causal depthwise conv (kernel 4, no bias) + SiLU over a chunk of
// tokens, continuing from the conv state (the previous 3 inputs, oldest first):
//   Cv[t][i] = silu(sum_j w[i][j] * x_{t-3+j}[i])
// One thread per (token, channel). Needs math.wgsl. Host constant: D.

struct Dims { T: u32, nC: u32, start: u32, pad: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> state: array<f32>;
@group(0) @binding(4) var<storage, read_write> Cv: array<f32>;

// Input row t + j - 3: from the chunk, or from the state before it.
fn input(t: u32, j: u32, i: u32) -> f32 {
  let back = 3u - j;
  if (t >= back) { return X[(t - back) * D + i]; }
  return state[(3u - back + t) * D + i];
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let t = gid.y;
  if (i >= D || t >= dims.T) { return; }
  var acc = 0.0;
  for (var j = 0u; j < 4u; j++) { acc = fma(w[i * 4u + j], input(t, j, i), acc); }
  Cv[t * D + i] = silu(acc);
}
