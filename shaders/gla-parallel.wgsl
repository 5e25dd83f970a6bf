// The GLA of a short prompt in one pass after decay/key, in place of the
// chunked passes (chunk-state, scan, output): two dispatches a layer fewer.
// Its outputs take the parallel form over the whole prompt: per head, with
// b_t the prompt's cumulative log decay (every exponent below <= 0),
//   o_t = s (q_t * exp(b_t)) S_init + sum_{s<=t} A[t,s] v_s
//   A[t,s] = s sum_d q_t[d] k_s[d] exp(b_t[d] - b_s[d])
// quadratic in the prompt's length, which a short prompt affords; and its
// final state
//   S_end = exp(b_last) S_init + sum_s (k_s * exp(b_last - b_s))^T v_s.
// Workgroups [0, H KB16) compute S_end, one per head and 16 key dims; the
// others one 16-row query sub-chunk of one head each, the last sub-chunks
// (the most keys) first. A query sub-chunk with first row n sweeps the
// earlier keys 16 at a time, factored relative to row n as in the chunked
// output kernels: (q_t exp(b_t - b_n)) . (k_s exp(b_n - b_s)); the 16x16
// diagonal block is elementwise. Both kinds of workgroup read S_init from
// S0, where decay/key copied the layer's state (this pass overwrites it
// with S_end).
//
// b comes per 64-token chunk from decay/key (its running sums restart at
// each chunk). Between chunks, b_n - b_s is (tot_c - b_s) + R_c + b_n: the
// rest of key s's chunk c, the totals of the chunks in between (R_c), and
// row n's part of its own chunk, so that each term carries the rounding of
// its own stretch of tokens only, as in the scan. Both kinds of workgroup
// sweep their keys from the nearest block back to the first, so R_c grows
// by one chunk total at a time, nearest first, in the registers of the
// thread that stages those key dims.
//
// 256 threads: thread (r, g) = (tid / 16, tid % 16) owns row n + r, its
// score against key g of the block, and the value quads g, g + 16, ...
// Keys, q and values are staged as vec4 (a quarter of the workgroup-memory
// loads, as in gla-chunk-state.wgsl); rows of key quads are padded to an
// odd count, so the 16 keys of a row's threads fall in different banks.
// Needs math.wgsl, gla-output-shared.wgsl. Host constants: H, K, V, DK, D,
// NP, Q_OFF, V_OFF, G_OFF; SCALE: f32 = K^-0.5.

// The bindings 0-6: gla-output-shared.wgsl (S0: the state before the prompt).
@group(0) @binding(7) var<storage, read_write> S: array<f32>;

const TPR: u32 = 16u;
const KQ: u32 = (K + 3u) / 4u;     // key dims, in quads
const KQP: u32 = KQ | 1u;          // a staged row of key quads, padded to an odd count
const VQ: u32 = (V + 3u) / 4u;     // value quads
const QPT: u32 = (VQ + 15u) / 16u; // value quads per thread
const VPT: u32 = 4u * QPT;
const KB16: u32 = (K + 15u) / 16u; // blocks of 16 key dims: the final state's workgroups per head
// invocation g of a row holds value quads g, g + 16, ...
fn col_of(g: u32, u: u32) -> u32 { return (g + 16u * (u / 4u)) * 4u + u % 4u; }

// sm: the scores A [16][16] (the final state: two blocks of scaled keys), and row_sum's sums
var<workgroup> sm: array<f32, 512>;
// the query rows: q, then s q exp(b + E), then q exp(b - b_n) [16][KQP] | b [16][KQP]
var<workgroup> qv: array<vec4<f32>, 32u * KQP>;
var<workgroup> kv: array<vec4<f32>, 16u * KQP>;
// two blocks of 16 value rows (or of S_init rows)
var<workgroup> vv: array<vec4<f32>, 32u * VQ>;

const KL: u32 = (16u * KQ + 255u) / 256u; // key quads a thread loads
const VL: u32 = (16u * VQ + 255u) / 256u; // value quads a thread loads
// A thread's key quads of a block: keys (or q), running decays, and (keys only) their chunk's
// total decay. These and ValueQuads are vec4 twins of the chunked output kernels' scalar staging
// (gla-output-shared.wgsl: vec4 column groups made the per-chunk kernel slower there, README).
struct KeyQuads { k: array<vec4<f32>, KL>, b: array<vec4<f32>, KL>, t: array<vec4<f32>, KL> }
alias ValueQuads = array<vec4<f32>, VL>;

// Rows r0 .. r0 + 15 of head h (one chunk's): their keys and chunk total (or with `query`, their
// q), and running decays.
fn load_key_quads(h: u32, r0: u32, query: bool, tid: u32) -> KeyQuads {
  var r: KeyQuads;
  let last = (r0 / 64u * 64u + 63u) * DK + h * K;
  for (var i = 0u; i < KL; i++) {
    let e = tid + 256u * i;
    r.k[i] = vec4<f32>(0.0);
    r.b[i] = vec4<f32>(0.0);
    r.t[i] = vec4<f32>(0.0);
    if (e < 16u * KQ) {
      let row = r0 + e / KQ;
      for (var j = 0u; j < 4u; j++) {
        let d = (e % KQ) * 4u + j;
        if (d < K) {
          r.b[i][j] = B[row * DK + h * K + d];
          if (query) {
            if (row < dims.T) { r.k[i][j] = P[row * NP + Q_OFF + h * K + d]; }
          } else {
            r.k[i][j] = Kk[row * DK + h * K + d];
            r.t[i][j] = B[last + d];
          }
        }
      }
    }
  }
  return r;
}

// 16 rows of V floats as quads (zero past V): value rows r0 .. of head h (zero past the prompt), or
// with `state`, S_init's rows r0 .. (zero past K).
fn load_value_quads(h: u32, r0: u32, state: bool, tid: u32) -> ValueQuads {
  var r: ValueQuads;
  for (var i = 0u; i < VL; i++) {
    let e = tid + 256u * i;
    r[i] = vec4<f32>(0.0);
    let row = r0 + e / VQ;
    if (e < 16u * VQ && row < select(dims.T, K, state)) {
      for (var j = 0u; j < 4u; j++) {
        let col = (e % VQ) * 4u + j;
        if (col < V) {
          if (state) { r[i][j] = S0[(h * K + row) * V + col]; } else { r[i][j] = P[row * NP + V_OFF + h * V + col]; }
        }
      }
    }
  }
  return r;
}

fn put_value_quads(r: ptr<function, ValueQuads>, buf: u32, tid: u32) {
  for (var i = 0u; i < VL; i++) {
    let e = tid + 256u * i;
    if (e < 16u * VQ) { vv[buf * 16u * VQ + e] = (*r)[i]; }
  }
}

// o[quads of this thread] += a * staged row s of value buffer buf
fn add_row(o: ptr<function, array<f32, VPT>>, a: f32, buf: u32, s: u32, g: u32) {
  for (var u = 0u; u < QPT; u++) {
    if (g + 16u * u < VQ) {
      let v = vv[(buf * 16u + s) * VQ + g + 16u * u];
      for (var j = 0u; j < 4u; j++) { (*o)[4u * u + j] = fma(a, v[j], (*o)[4u * u + j]); }
    }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  if (wid.x < H * KB16) {
    final_state(wid.x / KB16, (wid.x % KB16) * 16u, tid);
    return;
  }
  let f = wid.x - H * KB16;
  sub_chunk_output((dims.T + 15u) / 16u - 1u - f / H, f % H, tid);
}

fn sub_chunk_output(qs: u32, h: u32, tid: u32) {
  let n = qs * 16u;
  let cn = n / 64u;
  let r = tid / 16u;
  let g = tid % 16u;
  let row = n + r;
  let live = row < dims.T;

  // the diagonal block first: rows n .. n + 15 as queries (q, b) and as keys (raw)
  let qq = load_key_quads(h, n, true, tid);
  var kq = load_key_quads(h, n, false, tid);
  var vq = load_value_quads(h, n, false, tid);
  var st = load_value_quads(h, 0u, true, tid);
  for (var i = 0u; i < KL; i++) {
    let e = tid + 256u * i;
    if (e < 16u * KQ) {
      qv[(e / KQ) * KQP + e % KQ] = qq.k[i];
      qv[(16u + e / KQ) * KQP + e % KQ] = qq.b[i];
      kv[(e / KQ) * KQP + e % KQ] = kq.k[i];
    }
  }
  put_value_quads(&vq, 0u, tid);
  if (qs > 0u) {
    kq = load_key_quads(h, n - 16u, false, tid);
    vq = load_value_quads(h, n - 16u, false, tid);
  }
  workgroupBarrier();
  var acc = 0.0;
  if (g <= r) {
    for (var dq = 0u; dq < KQ; dq++) {
      let decay = exp(qv[(16u + r) * KQP + dq] - qv[(16u + g) * KQP + dq]);
      acc += dot(qv[r * KQP + dq] * kv[g * KQP + dq], decay);
    }
  }
  var aug = 0.0;  // this thread's key dims' share of q . (k * w_aug)
  for (var dq = g; dq < KQ; dq += 16u) {
    var w = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) { if (dq * 4u + j < K) { w[j] = waug[h * K + dq * 4u + j]; } }
    aug += dot(qv[r * KQP + dq] * kv[r * KQP + dq], w);
  }
  sm[r * 16u + g] = SCALE * acc;
  workgroupBarrier();
  var o: array<f32, VPT>;
  for (var s = 0u; s < 16u; s++) { add_row(&o, sm[r * 16u + s], 0u, s, g); }
  workgroupBarrier();

  // s (q_t * exp(b_t)) S_init, b_t = E + the row's part of its chunk, E the total decay of the
  // chunks before it (nearest first); 16 key dims of S_init at a time
  for (var i = 0u; i < KL; i++) {
    let e = tid + 256u * i;
    if (e < 16u * KQ) {
      let dq = e % KQ;
      var E = vec4<f32>(0.0);
      for (var c = cn; c > 0u; c--) {
        for (var j = 0u; j < 4u; j++) { if (dq * 4u + j < K) { E[j] += B[((c - 1u) * 64u + 63u) * DK + h * K + dq * 4u + j]; } }
      }
      qv[(e / KQ) * KQP + dq] = SCALE * qq.k[i] * exp(qq.b[i] + E);
    }
  }
  for (var kb = 0u; kb < K; kb += 16u) {
    let buf = (kb / 16u) % 2u;
    put_value_quads(&st, buf, tid);
    if (kb + 16u < K) { st = load_value_quads(h, kb + 16u, true, tid); }
    workgroupBarrier();
    for (var j = 0u; j < 16u; j++) {
      let d = kb + j;
      if (d < K) { add_row(&o, qv[r * KQP + d / 4u][d % 4u], buf, j, g); }
    }
  }
  workgroupBarrier();
  // q_t exp(b_t - b_n) for the earlier blocks (rows n .. n + 15 share a chunk: both within it)
  for (var i = 0u; i < KL; i++) {
    let e = tid + 256u * i;
    if (e < 16u * KQ) { qv[(e / KQ) * KQP + e % KQ] = qq.k[i] * exp(qq.b[i] - qv[16u * KQP + e % KQ]); }
  }

  // the earlier blocks from the nearest back, their keys rescaled to row n; per staged key quad, the
  // chunk being swept (from cn down), its total, and R (the totals of the chunks between it and
  // row n's)
  var cur = cn;
  var tcur: array<vec4<f32>, KL>;
  var R: array<vec4<f32>, KL>;
  for (var jr = 1u; jr <= qs; jr++) {
    let j = qs - jr;
    let buf = jr % 2u;
    let c = j / 4u;
    let entering = c != cur;
    cur = c;
    for (var i = 0u; i < KL; i++) {
      let e = tid + 256u * i;
      if (e < 16u * KQ) {
        let dq = e % KQ;
        if (entering) {
          R[i] += tcur[i];
          tcur[i] = kq.t[i];
        }
        let bn = qv[16u * KQP + dq];
        var k = kq.k[i];
        if (c == cn) {
          k *= exp(bn - kq.b[i]);
        } else {
          k *= exp(bn + (R[i] + (tcur[i] - kq.b[i])));
        }
        kv[(e / KQ) * KQP + dq] = k;
      }
    }
    put_value_quads(&vq, buf, tid);
    if (j > 0u) {
      kq = load_key_quads(h, (j - 1u) * 16u, false, tid);
      vq = load_value_quads(h, (j - 1u) * 16u, false, tid);
    }
    workgroupBarrier();
    var a = 0.0;
    for (var dq = 0u; dq < KQ; dq++) { a += dot(qv[r * KQP + dq], kv[g * KQP + dq]); }
    sm[r * 16u + g] = SCALE * a;
    workgroupBarrier();
    for (var s = 0u; s < 16u; s++) { add_row(&o, sm[r * 16u + s], buf, s, g); }
  }

  gate_row(&o, row_sum(aug, r, g), row, h, r, g, live);
}

// S_end's rows kb .. kb + 15 of head h: thread (j, g) owns row kb + j, value quads g, g + 16, ...
// Thread tid stages key dim kb + tid % 16 of row tid / 16 of each block, the blocks from the last
// back, with the chunk being swept, its total and R (the totals of the chunks after it).
fn final_state(h: u32, kb: u32, tid: u32) {
  let j = tid / 16u;
  let g = tid % 16u;
  let d = kb + j;
  let nSub = (dims.T + 15u) / 16u;
  let dd = kb + tid % 16u;
  var kl = 0.0;
  var bl = 0.0;
  var tl = 0.0;
  let row0 = (nSub - 1u) * 16u + tid / 16u;
  if (dd < K) {
    kl = Kk[row0 * DK + h * K + dd];
    bl = B[row0 * DK + h * K + dd];
    tl = B[((nSub - 1u) / 4u * 64u + 63u) * DK + h * K + dd];
  }
  var vq = load_value_quads(h, (nSub - 1u) * 16u, false, tid);
  var s: array<f32, VPT>;
  var cur = dims.nC;
  var tcur = 0.0;
  var R = 0.0;
  for (var jr = 0u; jr < nSub; jr++) {
    let jb = nSub - 1u - jr;
    let buf = jr % 2u;
    let c = jb / 4u;
    if (c != cur) {
      R += tcur;
      tcur = tl;
      cur = c;
    }
    var w = 0.0;
    if (dd < K) { w = kl * exp((tcur - bl) + R); }
    sm[buf * 256u + tid] = w;
    put_value_quads(&vq, buf, tid);
    if (jb > 0u) {
      let row = (jb - 1u) * 16u + tid / 16u;
      if (dd < K) {
        kl = Kk[row * DK + h * K + dd];
        bl = B[row * DK + h * K + dd];
        tl = B[((jb - 1u) / 4u * 64u + 63u) * DK + h * K + dd];
      }
      vq = load_value_quads(h, (jb - 1u) * 16u, false, tid);
    }
    workgroupBarrier();
    for (var t = 0u; t < 16u; t++) { add_row(&s, sm[buf * 256u + t * 16u + j], buf, t, g); }
  }
  // + exp(the prompt's total decay) S_init: the totals gathered by the threads of row 0
  workgroupBarrier();
  if (tid < 16u) { sm[tid] = R + tcur; }
  workgroupBarrier();
  if (d < K) {
    let decay = exp(sm[j]);
    for (var u = 0u; u < VPT; u++) {
      let col = col_of(g, u);
      if (col < V) { S[(h * K + d) * V + col] = fma(decay, S0[(h * K + d) * V + col], s[u]); }
    }
  }
}
