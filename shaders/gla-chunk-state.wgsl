// Chunked GLA, pass 1 of 3: each 64-token chunk's own contribution to the
// state at its end (spec §4), per head:
//   U_c = sum_s (k_s * exp(b_last - b_s))^T v_s        [K, V]
// every exponent <= 0. Workgroup = (chunk, head); the chunk's keys and
// values are staged 16 tokens at a time.
// The value columns may be split over VS workgroups (grid z, VW = V / VS
// columns each), to keep a GPU busy when there are few (chunk, head) pairs.
// Host constants: H, K, V, DK, NP (projection row stride), V_OFF (column of v), VS.

struct Dims { T: u32, nC: u32, start: u32, pad: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> P: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read> Kk: array<f32>;
@group(0) @binding(4) var<storage, read_write> U: array<f32>;

const NT: u32 = 256u;
const VW: u32 = V / VS;
const EPT: u32 = (K * VW + NT - 1u) / NT;

var<workgroup> kd: array<f32, 16u * K>;
var<workgroup> vs: array<f32, 16u * VW>;

@compute @workgroup_size(NT)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x;
  let h = wid.y;
  let v0 = wid.z * VW;
  let last = (c * 64u + 63u) * DK + h * K;
  var acc: array<f32, EPT>;
  for (var s0 = 0u; s0 < 64u; s0 += 16u) {
    // (a constant trip count, not e < N from tid: the compiler unrolls it and issues the loads together)
    for (var k_ = 0u; k_ < (16u * K + NT - 1u) / NT; k_++) {
      let e = tid + NT * k_;
      if (e >= 16u * K) { break; }
      let s = e / K;
      let k = e % K;
      let row = c * 64u + s0 + s;
      let i = row * DK + h * K + k;
      kd[e] = Kk[i] * exp(B[last + k] - B[i]);
    }
    for (var k_ = 0u; k_ < (16u * VW + NT - 1u) / NT; k_++) {
      let e = tid + NT * k_;
      if (e >= 16u * VW) { break; }
      let row = c * 64u + s0 + e / VW;
      vs[e] = select(0.0, P[row * NP + V_OFF + h * V + v0 + e % VW], row < dims.T);
    }
    workgroupBarrier();
    for (var i = 0u; i < EPT; i++) {
      let e = tid + i * NT;
      if (e < K * VW) {
        let k = e / VW;
        let v = e % VW;
        var a = acc[i];
        for (var s = 0u; s < 16u; s++) { a = fma(kd[s * K + k], vs[s * VW + v], a); }
        acc[i] = a;
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < EPT; i++) {
    let e = tid + i * NT;
    if (e < K * VW) { U[(c * H + h) * K * V + (e / VW) * V + v0 + e % VW] = acc[i]; }
  }
}
