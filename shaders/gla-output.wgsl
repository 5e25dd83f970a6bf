// Chunked GLA, pass 3 of 3, and what follows per token (gla-output-shared.wgsl):
// the outputs of one 64-token chunk of one head (spec §4), from the state
// at the chunk start S0 (written by the scan):
//   o_t = s (q_t * exp(b_t)) S0 + sum_{s<=t} A[t,s] v_s
//   A[t,s] = s sum_d q_t[d] k_s[d] exp(b_t[d] - b_s[d])
// A is built from 16-row sub-chunks. Below the diagonal, rows of query
// sub-chunk i and keys of an earlier sub-chunk are factored relative to the
// first row n of sub-chunk i: (q_t exp(b_t - b_n)) . (k_s exp(b_n - b_s)),
// both exponents <= 0 (never exp(-b) over the whole chunk, which overflows
// for strong decay). The 16x16 diagonal blocks are computed elementwise.
//
// 256 threads: thread (r, g) = (tid / 4, tid % 4) owns row r of the chunk,
// A[r, 16g .. 16g+15] and the output columns g, g+4, g+8, ... of row r.
// The key dims are taken 16 at a time (any K), staged in workgroup memory
// with S0's matching rows; then A goes to workgroup memory and meets V.
// Short prompts have few (chunk, head) pairs: gla-output-sub.wgsl then
// spreads each chunk over four workgroups.
// Needs math.wgsl, gla-output-shared.wgsl. Host constants: H, K, V, DK, D, NP,
// Q_OFF, V_OFF, G_OFF; SCALE: f32 = K^-0.5.

// The bindings: gla-output-shared.wgsl.

const TPR: u32 = 4u;
const VPT: u32 = (V + 3u) / 4u;
// invocation g of a row holds its columns g, g + TPR, ...
fn col_of(g: u32, u: u32) -> u32 { return g + TPR * u; }
// Workgroup memory, one array carved per phase:
//   keys phase: k [64][16] | b [64][16] | k rescaled for sub-chunks 1..3 [96][16] | S0 rows [16][V]
//   values phase: A [64][64] | v [16][V]
//   gate phase: a row's partial sums (gla-output-shared.wgsl)
const OFF_B: u32 = 1024u;
const OFF_KH: u32 = 2048u;
const OFF_S: u32 = 3584u;
const OFF_V: u32 = 4096u;
const SMEM: u32 = 4096u + 16u * V;
var<workgroup> sm: array<f32, SMEM>;

// Row offset of sub-chunk i's rescaled keys in the KH block (i = 1, 2, 3 hold 16, 32, 48 keys).
fn kh_base(i: u32) -> u32 {
  return OFF_KH + (i * (i - 1u) / 2u) * 16u * 16u;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x;
  let h = wid.y;
  let r = tid / 4u;
  let g = tid % 4u;
  let row = c * 64u + r;
  let live = row < dims.T;
  let sub = r / 16u;        // query sub-chunk of this row
  let n = sub * 16u;        // its reference row

  var o: array<f32, VPT>;
  var a: array<f32, 16>;
  var aug = 0.0;  // q . (k * w_aug), this row's own (raw) key

  for (var kb = 0u; kb < K; kb += 16u) {
    // stage k, b of the chunk's 64 rows and S0's 16 rows for these key dims
    // (a constant trip count, not e < N from tid: the compiler unrolls it and issues the loads together)
    for (var k_ = 0u; k_ < (1024u + 256u - 1u) / 256u; k_++) {
      let e = tid + 256u * k_;
      if (e >= 1024u) { break; }
      let s = e / 16u;
      let j = e % 16u;
      let i = (c * 64u + s) * DK + h * K + kb + j;
      let ok = kb + j < K;
      sm[e] = select(0.0, Kk[i], ok);
      sm[OFF_B + e] = select(0.0, B[i], ok);
    }
    stage_state_rows(c, h, kb, OFF_S, tid);
    workgroupBarrier();
    // keys rescaled to each later sub-chunk's reference row
    for (var k_ = 0u; k_ < (96u * 16u + 256u - 1u) / 256u; k_++) {
      let e = tid + 256u * k_;
      if (e >= 96u * 16u) { break; }
      let idx = e / 16u;   // 0..15 -> sub-chunk 1, 16..47 -> 2, 48..95 -> 3
      let j = e % 16u;
      var i = 1u;
      if (idx >= 48u) { i = 3u; } else if (idx >= 16u) { i = 2u; }
      let s = idx - (i * (i - 1u) / 2u) * 16u;
      sm[OFF_KH + e] = sm[s * 16u + j] * exp(sm[OFF_B + i * 256u + j] - sm[OFF_B + s * 16u + j]);
    }
    workgroupBarrier();

    var q: array<f32, 16>;
    var br: array<f32, 16>;
    for (var j = 0u; j < 16u; j++) {
      q[j] = select(0.0, P[row * NP + Q_OFF + h * K + kb + j], live && kb + j < K);
      br[j] = sm[OFF_B + r * 16u + j];
      aug = fma(q[j] * sm[r * 16u + j], select(0.0, waug[h * K + kb + j], kb + j < K), aug);
    }
    // inter-chunk: s (q * exp(b)) S0
    for (var j = 0u; j < 16u; j++) {
      let qe = SCALE * q[j] * exp(br[j]);
      for (var u = 0u; u < VPT; u++) {
        let col = g + 4u * u;
        if (col < V) { o[u] = fma(qe, sm[OFF_S + j * V + col], o[u]); }
      }
    }
    // intra-chunk scores for keys 16g .. 16g+15
    if (g < sub) {
      var qh: array<f32, 16>;
      for (var j = 0u; j < 16u; j++) { qh[j] = q[j] * exp(br[j] - sm[OFF_B + n * 16u + j]); }
      let base = kh_base(sub) + g * 256u;
      for (var s = 0u; s < 16u; s++) {
        var acc = a[s];
        for (var j = 0u; j < 16u; j++) { acc = fma(qh[j], sm[base + s * 16u + j], acc); }
        a[s] = acc;
      }
    } else if (g == sub) {
      for (var s = 0u; s < 16u; s++) {
        let ks = n + s;
        if (ks <= r) {
          var acc = a[s];
          for (var j = 0u; j < 16u; j++) {
            acc = fma(q[j] * sm[ks * 16u + j], exp(br[j] - sm[OFF_B + ks * 16u + j]), acc);
          }
          a[s] = acc;
        }
      }
    }
    workgroupBarrier();
  }

  // A (scaled) to workgroup memory; then o += A v, values staged 16 tokens at a time
  for (var s = 0u; s < 16u; s++) { sm[r * 64u + g * 16u + s] = SCALE * a[s]; }
  for (var s0 = 0u; s0 < 64u; s0 += 16u) {
    workgroupBarrier();
    stage_values(c, h, s0, OFF_V, tid);
    workgroupBarrier();
    if (s0 <= r) {
      for (var s = 0u; s < 16u; s++) {
        let w = sm[r * 64u + s0 + s];
        for (var u = 0u; u < VPT; u++) {
          let col = g + 4u * u;
          if (col < V) { o[u] = fma(w, sm[OFF_V + s * V + col], o[u]); }
        }
      }
    }
  }
  gate_row(&o, aug, row, h, r, g, live);
}
