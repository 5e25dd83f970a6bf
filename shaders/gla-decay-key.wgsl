// The projections' completion and the decay and key of MetaLA (spec §2
// step 3), for the chunked GLA. First, when the projection product was split
// over K (gemm.wgsl SPLIT; short prompts, so that big tiles still fill the
// GPU), its dims.psplits partial sums ([split][rows][NP]) and bias are added
// into P: this is the first kernel to read P, so the sums cost no dispatch
// of their own. Then:
//   gk = logsigmoid(a) / 16, k = 1 - exp(gk) (as -expm1(gk)),
//   b = cumulative sum of gk inside each 64-token chunk (inclusive).
// A workgroup takes 64 columns of P (of them, the key dims in k_gate) for
// one chunk: its 256 threads compute the 64 x 64 decays and keys (the
// transcendental part), then one thread per dim
// sums the chunk's decays in token order, as a single thread would: b_last -
// b_s must carry only the rounding of the terms between s and the last row
// (a partial-sum tree would add its prefix errors, ~1e-4 relative at the
// strong decays whose b reaches -900 within a chunk).
// Rows past the prompt (the padding of the last chunk) get gk = 0 and k = 0:
// no decay and no contribution, so the chunk's last row carries the true
// total decay.
// With COPY_STATE, the layer's state before the prompt is also copied to
// `stash`, where gla-parallel.wgsl reads it while overwriting the state.
// Needs math.wgsl. Host constants: DK (key dims, all heads), NP (row stride
// of the projection buffer), A_OFF (column of k_gate in it), MAX_SPLITS,
// COPY_STATE: bool, SN (floats of the state).

struct Dims { T: u32, nC: u32, start: u32, splits: u32, psplits: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> P: array<f32>;
@group(0) @binding(2) var<storage, read_write> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> Kk: array<f32>;
@group(0) @binding(4) var<storage, read> partials: array<f32>;
@group(0) @binding(5) var<storage, read> pbias: array<f32>;
@group(0) @binding(6) var<storage, read> state: array<f32>;
@group(0) @binding(7) var<storage, read_write> stash: array<f32>;

var<workgroup> gkm: array<f32, 4096>;  // [token][dim] of the chunk

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.y;
  let c0 = wid.x * 64u;
  if (COPY_STATE) {
    // a slice of the state per workgroup
    let groups = (NP + 63u) / 64u;
    let per = (SN + groups * dims.nC - 1u) / (groups * dims.nC);
    let first = (c * groups + wid.x) * per;
    for (var e = first + tid; e < min(first + per, SN); e += 256u) { stash[e] = state[e]; }
  }
  let S = dims.psplits;
  if (S > 0u) {
    // (a constant trip count, not e < N from tid: the compiler unrolls it and issues the loads together)
    for (var k_ = 0u; k_ < (4096u + 256u - 1u) / 256u; k_++) {
      let e = tid + 256u * k_;
      if (e >= 4096u) { break; }
      let row = c * 64u + e / 64u;
      let col = c0 + e % 64u;
      if (row < dims.T && col < NP) {
        var x = pbias[col];
        for (var z = 0u; z < MAX_SPLITS; z++) { if (z < S) { x += partials[(z * dims.T + row) * NP + col]; } }
        P[row * NP + col] = x;
      }
    }
  }
  // the key dims j = col - A_OFF among this workgroup's columns (a workgroup-uniform test)
  if (c0 + 64u <= A_OFF || c0 >= A_OFF + DK) { return; }
  for (var k_ = 0u; k_ < (4096u + 256u - 1u) / 256u; k_++) {
    let e = tid + 256u * k_;
    if (e >= 4096u) { break; }
    let t = e / 64u;
    let col = c0 + e % 64u;
    let key = col >= A_OFF && col < A_OFF + DK;
    let row = c * 64u + t;
    var gk = 0.0;
    if (key && row < dims.T) { gk = logsigmoid(P[row * NP + col]) / 16.0; }
    gkm[e] = gk;
    if (key) { Kk[row * DK + col - A_OFF] = -expm1_f(gk); }
  }
  workgroupBarrier();
  let col = c0 + tid;
  if (tid < 64u && col >= A_OFF && col < A_OFF + DK) {
    // 16 decays at a time into registers first: their loads issue together, and the chain of
    // dependent steps is the adds alone, not a workgroup-memory load each
    var b = 0.0;
    for (var t0 = 0u; t0 < 64u; t0 += 16u) {
      var g: array<f32, 16>;
      for (var t = 0u; t < 16u; t++) { g[t] = gkm[(t0 + t) * 64u + tid]; }
      for (var t = 0u; t < 16u; t++) {
        b += g[t];
        B[(c * 64u + t0 + t) * DK + col - A_OFF] = b;
      }
    }
  }
}
