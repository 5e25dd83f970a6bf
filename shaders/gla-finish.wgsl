// After the GLA, per token and head (spec §2 steps 5-7, before out_proj):
//   o += sigmoid((q . (k * w_aug)) * v)     self-augmentation, q unscaled
//   o  = LayerNorm_V(o)                     eps 1e-5, no affine
//   y  = silu(g) * o
// in place in O. Workgroup = (token, head), 64 threads, reductions through
// workgroup memory. Needs math.wgsl.
// Host constants: K, V, DK, D, NP, Q_OFF, V_OFF, G_OFF.

struct Dims { T: u32, nC: u32, start: u32, pad: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> P: array<f32>;
@group(0) @binding(2) var<storage, read> Kk: array<f32>;
@group(0) @binding(3) var<storage, read> waug: array<f32>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;

const VPT: u32 = (V + 63u) / 64u;
var<workgroup> red: array<f32, 64>;

fn sum64(x: f32, tid: u32) -> f32 {
  red[tid] = x;
  workgroupBarrier();
  for (var w = 32u; w > 0u; w >>= 1u) {
    if (tid < w) { red[tid] += red[tid + w]; }
    workgroupBarrier();
  }
  let s = red[0];
  workgroupBarrier();
  return s;
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let t = wid.x;
  let h = wid.y;
  var part = 0.0;
  for (var k = tid; k < K; k += 64u) {
    part += P[t * NP + Q_OFF + h * K + k] * Kk[t * DK + h * K + k] * waug[h * K + k];
  }
  let aug = sum64(part, tid);
  var o: array<f32, VPT>;
  var sum = 0.0;
  for (var u = 0u; u < VPT; u++) {
    let j = tid + 64u * u;
    if (j < V) {
      o[u] = O[t * D + h * V + j] + sigmoid(aug * P[t * NP + V_OFF + h * V + j]);
      sum += o[u];
    }
  }
  let mean = sum64(sum, tid) / f32(V);
  var sq = 0.0;
  for (var u = 0u; u < VPT; u++) {
    let j = tid + 64u * u;
    if (j < V) { sq += (o[u] - mean) * (o[u] - mean); }
  }
  let inv = inverseSqrt(sum64(sq, tid) / f32(V) + 1e-5);
  for (var u = 0u; u < VPT; u++) {
    let j = tid + 64u * u;
    if (j < V) { O[t * D + h * V + j] = silu(P[t * NP + G_OFF + h * V + j]) * (o[u] - mean) * inv; }
  }
}
