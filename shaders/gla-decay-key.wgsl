// Decay and key of MetaLA (spec §2 step 3), for the chunked GLA:
//   gk = logsigmoid(a) / 16, k = 1 - exp(gk) (as -expm1(gk)),
//   b = cumulative sum of gk inside each 64-token chunk (inclusive).
// A workgroup takes 64 key dims of one chunk: its 256 threads compute the
// 64 x 64 decays and keys (the transcendental part), then one thread per dim
// sums the chunk's decays in token order, as a single thread would: b_last -
// b_s must carry only the rounding of the terms between s and the last row
// (a partial-sum tree would add its prefix errors, ~1e-4 relative at the
// strong decays whose b reaches -900 within a chunk).
// Rows past the prompt (the padding of the last chunk) get gk = 0 and k = 0:
// no decay and no contribution, so the chunk's last row carries the true
// total decay.
// Needs math.wgsl. Host constants: DK (key dims, all heads), NP (row stride
// of the projection buffer), A_OFF (column of k_gate in it).

struct Dims { T: u32, nC: u32, start: u32, pad: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> P: array<f32>;
@group(0) @binding(2) var<storage, read_write> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> Kk: array<f32>;

var<workgroup> gkm: array<f32, 4096>;  // [token][dim] of the chunk

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.y;
  for (var e = tid; e < 4096u; e += 256u) {
    let t = e / 64u;
    let j = wid.x * 64u + e % 64u;
    let row = c * 64u + t;
    var gk = 0.0;
    if (j < DK && row < dims.T) { gk = logsigmoid(P[row * NP + A_OFF + j]) / 16.0; }
    gkm[e] = gk;
    if (j < DK) { Kk[row * DK + j] = -expm1_f(gk); }
  }
  workgroupBarrier();
  let j = wid.x * 64u + tid;
  if (tid < 64u && j < DK) {
    var b = 0.0;
    for (var t = 0u; t < 64u; t++) {
      b += gkm[t * 64u + tid];
      B[(c * 64u + t) * DK + j] = b;
    }
  }
}
