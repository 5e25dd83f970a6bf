// The gated unit of a GLU product whose sums were split over K (gemm.wgsl
// SPLIT), as the product's own epilogue (EPILOGUE 2) would have made it:
//   H[m][c/2 + i] = act(l1 + b1) * (l2 + b2)
// from the dims.gsplits partial sums ([split][rows][N]) of the interleaved
// columns (groups of 4: l1 c, l1 c+1, l2 c, l2 c+1). One thread per group.
// Needs math.wgsl, activations.wgsl and the host's glu_act.
// Host constants: N (the interleaved width, twice H's), MAX_SPLITS.

struct Dims { T: u32, nC: u32, start: u32, splits: u32, psplits: u32, gsplits: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> partials: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> H: array<vec2<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let q = gid.x;  // group of 4 columns
  let m = gid.y;
  if (q >= N / 4u || m >= dims.T) { return; }
  var v = vec4<f32>(0.0);
  for (var z = 0u; z < MAX_SPLITS; z++) { if (z < dims.gsplits) { v += partials[(z * dims.T + m) * (N / 4u) + q]; } }
  let h = v + bias[q];
  H[m * (N / 4u) + q] = vec2<f32>(glu_act(h.x) * h.z, glu_act(h.y) * h.w);
}
