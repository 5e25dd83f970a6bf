// Decay and key of MetaLA (spec §2 step 3), for the chunked GLA:
//   gk = logsigmoid(a) / 16, k = 1 - exp(gk) (as -expm1(gk)),
//   b = cumulative sum of gk inside each 64-token chunk (inclusive).
// One thread per (chunk, key dim) walks the chunk's 64 tokens. Rows past
// the prompt (the padding of the last chunk) get gk = 0 and k = 0: no decay
// and no contribution, so the chunk's last row carries the true total decay.
// Needs math.wgsl. Host constants: DK (key dims, all heads), NP (row stride
// of the projection buffer), A_OFF (column of k_gate in it).

struct Dims { T: u32, nC: u32, start: u32, pad: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> P: array<f32>;
@group(0) @binding(2) var<storage, read_write> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> Kk: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  let c = gid.y;
  if (j >= DK) { return; }
  var b = 0.0;
  for (var t = 0u; t < 64u; t++) {
    let row = c * 64u + t;
    var k = 0.0;
    if (row < dims.T) {
      let gk = logsigmoid(P[row * NP + A_OFF + j]) / 16.0;
      b += gk;
      k = -expm1_f(gk);
    }
    B[row * DK + j] = b;
    Kk[row * DK + j] = k;
  }
}
