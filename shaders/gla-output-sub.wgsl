// Chunked GLA, pass 3 of 3 for short prompts, and what follows per token
// (gla-output-shared.wgsl): the outputs of one 16-row sub-chunk of one 64-token
// chunk of one head (spec §4), from the state at the chunk start S0 (written
// by the scan):
//   o_t = s (q_t * exp(b_t)) S0 + sum_{s<=t} A[t,s] v_s
//   A[t,s] = s sum_d q_t[d] k_s[d] exp(b_t[d] - b_s[d])
// A workgroup per sub-chunk, not per chunk (gla-output.wgsl): a short
// prompt has few (chunk, head) pairs, and a workgroup's time is its chain
// of dependent steps, so four short chains fill a big GPU where one long one
// left it idle. With many chunks the per-chunk kernel wins: it stages each
// chunk's keys and S0 once for 64 rows, not once per 16.
// Keys of earlier sub-chunks are factored relative to this sub-chunk's first
// row n: (q_t exp(b_t - b_n)) . (k_s exp(b_n - b_s)), both exponents <= 0
// (never exp(-b) over the whole chunk, which overflows for strong decay);
// the 16x16 diagonal block is computed elementwise.
//
// 256 threads: thread (r, g) = (tid / 16, tid % 16) owns row n + r, its
// scores against keys 16j + g (j = 0 .. sub-chunk) and output columns
// g, g + 16, ... The key dims are taken 16 at a time (any K), staged in
// workgroup memory with S0's matching rows and the rows' q in the three
// forms the products use (each computed once, by thread (r, d) for key dim
// d: registers stay few, so many workgroups fit a multiprocessor); then A
// goes to workgroup memory and meets V 16 keys at a time.
// Needs math.wgsl, gla-output-shared.wgsl. Host constants: H, K, V, DK, D, NP, Q_OFF,
// V_OFF, G_OFF; SCALE: f32 = K^-0.5.

// The bindings: gla-output-shared.wgsl.

const TPR: u32 = 16u;
const VPT: u32 = (V + 15u) / 16u;
// invocation g of a row holds its columns g, g + TPR, ...
fn col_of(g: u32, u: u32) -> u32 { return g + TPR * u; }
// Workgroup memory, one array carved per phase:
//   keys phase:   k [64][KS] | b [64][KS] | q, s q exp(b), q exp(b - b_n): [16][16] each | S0 rows [16][V]
//   values phase: A [16][64] | v [16][V]
//   norm phase:   a row's 16 partial sums at [16 r, 16 r + 16)
// Key rows padded to 17 floats: the 16 invocations of a row read 16 different
// keys' dim j at once, which a stride of 16 would put in two banks.
const KS: u32 = 17u;
const OFF_B: u32 = 64u * KS;
const OFF_Q: u32 = 128u * KS;
const OFF_QE: u32 = OFF_Q + 256u;
const OFF_QH: u32 = OFF_Q + 512u;
const OFF_S: u32 = OFF_Q + 768u;
const OFF_V: u32 = 1024u;
var<workgroup> sm: array<f32, OFF_S + 16u * V>;

// What a block of 16 key dims stages, as loaded: this invocation's 4
// elements of the keys k and their running decays b (rows 0 .. keys - 1,
// zero past K), its row's q in dim kb + g, and its share of S0's 16 rows.
struct KeyBlock { k: array<f32, 4>, b: array<f32, 4>, q: f32, s: Rows }

fn load_key_block(c: u32, h: u32, keys: u32, kb: u32, row: u32, live: bool, g: u32, tid: u32) -> KeyBlock {
  var r: KeyBlock;
  for (var k_ = 0u; k_ < 4u; k_++) {
    let e = tid + 256u * k_;
    r.k[k_] = 0.0;
    r.b[k_] = 0.0;
    if (e < keys * 16u && kb + e % 16u < K) {
      let i = (c * 64u + e / 16u) * DK + h * K + kb + e % 16u;
      r.k[k_] = Kk[i];
      r.b[k_] = B[i];
    }
  }
  r.q = 0.0;
  if (live && kb + g < K) { r.q = P[row * NP + Q_OFF + h * K + kb + g]; }
  r.s = load_state_rows(c, h, kb, tid);
  return r;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x;
  let h = wid.y;
  // the last sub-chunks first: they see the most keys (4x the first's work), and a GPU starts
  // workgroups roughly in grid order, so the long ones run while the short ones fill in behind
  let sub = 3u - wid.z;
  let n = sub * 16u;        // reference row, chunk-relative
  if (c * 64u + n >= dims.T) { return; }  // the whole sub-chunk is padding
  let keys = n + 16u;       // the sub-chunk sees keys 0 .. keys - 1 of its chunk
  let r = tid / 16u;
  let g = tid % 16u;
  let cr = n + r;
  let row = c * 64u + cr;
  let live = row < dims.T;

  var o: array<f32, VPT>;
  var a: array<f32, 4>;
  var aug = 0.0;  // this thread's key dims' share of q . (k * w_aug)

  // each block of 16 key dims' loads are issued before the work on the block before it
  var blk = load_key_block(c, h, keys, 0u, row, live, g, tid);
  for (var kb = 0u; kb < K; kb += 16u) {
    for (var k_ = 0u; k_ < 4u; k_++) {
      let e = tid + 256u * k_;
      if (e < keys * 16u) {
        let at = e / 16u * KS + e % 16u;
        sm[at] = blk.k[k_];
        sm[OFF_B + at] = blk.b[k_];
      }
    }
    put_rows(&blk.s, OFF_S, tid);
    let dim = kb + g;
    let qv = blk.q;
    workgroupBarrier();
    if (kb + 16u < K) { blk = load_key_block(c, h, keys, kb + 16u, row, live, g, tid); }
    // earlier sub-chunks' keys rescaled to row n, in place (the diagonal block reads rows >= n, raw)
    for (var k_ = 0u; k_ < (768u + 256u - 1u) / 256u; k_++) {
      let e = tid + 256u * k_;
      if (e >= n * 16u) { break; }
      let at = e / 16u * KS + e % 16u;
      sm[at] = sm[at] * exp(sm[OFF_B + n * KS + e % 16u] - sm[OFF_B + at]);
    }
    let br = sm[OFF_B + cr * KS + g];
    sm[OFF_Q + tid] = qv;
    sm[OFF_QE + tid] = SCALE * qv * exp(br);
    sm[OFF_QH + tid] = qv * exp(br - sm[OFF_B + n * KS + g]);
    aug = fma(qv * sm[cr * KS + g], select(0.0, waug[h * K + dim], dim < K), aug);
    workgroupBarrier();

    // inter-chunk: s (q * exp(b)) S0
    for (var j = 0u; j < 16u; j++) {
      let qe = sm[OFF_QE + r * 16u + j];
      for (var u = 0u; u < VPT; u++) {
        let col = g + 16u * u;
        if (col < V) { o[u] = fma(qe, sm[OFF_S + j * V + col], o[u]); }
      }
    }
    // intra-chunk scores: earlier sub-chunks factored, then the diagonal block
    // (constant bounds, so that a stays in registers)
    for (var jj = 0u; jj < 4u; jj++) {
      let s = jj * 16u + g;
      var acc = a[jj];
      if (jj < sub) {
        for (var j = 0u; j < 16u; j++) { acc = fma(sm[OFF_QH + r * 16u + j], sm[s * KS + j], acc); }
      } else if (jj == sub && g <= r) {
        for (var j = 0u; j < 16u; j++) {
          acc = fma(sm[OFF_Q + r * 16u + j] * sm[s * KS + j], exp(sm[OFF_B + cr * KS + j] - sm[OFF_B + s * KS + j]), acc);
        }
      }
      a[jj] = acc;
    }
    workgroupBarrier();
  }

  // A (scaled; zero above the diagonal) to workgroup memory; then o += A v, 16 keys at a time
  var vals = load_values(c, h, 0u, tid);
  for (var jj = 0u; jj < 4u; jj++) { sm[r * 64u + jj * 16u + g] = SCALE * a[jj]; }
  for (var jj = 0u; jj <= sub; jj++) {
    workgroupBarrier();
    put_rows(&vals, OFF_V, tid);
    workgroupBarrier();
    if (jj < sub) { vals = load_values(c, h, (jj + 1u) * 16u, tid); }
    for (var s = 0u; s < 16u; s++) {
      let w = sm[r * 64u + jj * 16u + s];
      for (var u = 0u; u < VPT; u++) {
        let col = g + 16u * u;
        if (col < V) { o[u] = fma(w, sm[OFF_V + s * V + col], o[u]); }
      }
    }
  }

  gate_row(&o, row_sum(aug, r, g), row, h, r, g, live);
}
