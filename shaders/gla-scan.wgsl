// Chunked GLA, pass 2 of 3: the state across chunks, in f32 (spec §4).
// One thread per state entry (h, k, v) walks the chunks in order:
//   S_start(c) = S;  S = exp(b_last(c)) * S + U_c
// U_c is replaced by S_start(c) (what pass 3 reads), and the layer's state
// buffer ends holding the state after the prompt. The chunks go 4 at a time,
// their loads issued before the dependent updates: a short prompt's scan is
// a chain of memory latencies, one per group instead of one per chunk.
// Host constants: H, K, V, DK.

struct Dims { T: u32, nC: u32, start: u32, pad: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> U: array<f32>;
@group(0) @binding(3) var<storage, read_write> S: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let e = gid.x;
  if (e >= H * K * V) { return; }
  let hk = e / V;  // h * K + k
  var s = S[e];
  for (var c0 = 0u; c0 < dims.nC; c0 += 4u) {
    var u: array<f32, 4>;
    var a: array<f32, 4>;
    for (var j = 0u; j < 4u; j++) {
      let c = min(c0 + j, dims.nC - 1u);
      u[j] = U[c * H * K * V + e];
      a[j] = B[(c * 64u + 63u) * DK + hk];
    }
    for (var j = 0u; j < 4u; j++) {
      let c = c0 + j;
      if (c < dims.nC) {
        U[c * H * K * V + e] = s;
        s = fma(exp(a[j]), s, u[j]);
      }
    }
  }
  S[e] = s;
}
