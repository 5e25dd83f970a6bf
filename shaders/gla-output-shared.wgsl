// What the GLA's output kernels (gla-output.wgsl per chunk, gla-output-sub.wgsl
// per sub-chunk, gla-parallel.wgsl for short prompts) share: staging of S0's rows and of
// values into workgroup memory, and what follows the GLA per token and head
// (spec §2 steps 5-7), for rows each held by TPR invocations (invocation g
// of a row holds its columns col_of(g, u), u < VPT, of the head's V):
//   o += sigmoid((q . (k * w_aug)) * v)     self-augmentation, q unscaled
//   o  = LayerNorm_V(o)                     eps 1e-5, no affine
//   y  = silu(g) * o                        written to O
// Needs math.wgsl, and from the including kernel: the constants TPR, VPT,
// H, K, V, D, NP, V_OFF, G_OFF, fn col_of, workgroup memory sm (at least
// 256 floats), 256 invocations. Loops
// have constant trip counts, so the compiler unrolls them and issues the
// loads together.

// Their bindings: S0 holds the state at each chunk's start (the scan's output;
// for gla-parallel.wgsl, the state before the prompt).
struct Dims { T: u32, nC: u32, start: u32, pad: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> P: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read> Kk: array<f32>;
@group(0) @binding(4) var<storage, read> S0: array<f32>;
@group(0) @binding(5) var<storage, read> waug: array<f32>;
@group(0) @binding(6) var<storage, read_write> O: array<f32>;

// 16 rows of V floats as 256 invocations stage them: RL each, held in
// registers between the loads and the stores, so that a kernel can issue
// the next rows' loads before the work on the current ones (a short
// prompt's few workgroups leave nothing else to hide their latency).
const RL: u32 = (16u * V + 255u) / 256u;
alias Rows = array<f32, RL>;

// S0's rows kb .. kb + 15 (zero past K) for chunk c, head h.
fn load_state_rows(c: u32, h: u32, kb: u32, tid: u32) -> Rows {
  var r: Rows;
  for (var k_ = 0u; k_ < RL; k_++) {
    let e = tid + 256u * k_;
    let j = e / V;
    r[k_] = 0.0;
    if (e < 16u * V && kb + j < K) { r[k_] = S0[((c * H + h) * K + kb + j) * V + e % V]; }
  }
  return r;
}

// v of chunk c's rows r0 .. r0 + 15 (zero past the prompt), head h.
fn load_values(c: u32, h: u32, r0: u32, tid: u32) -> Rows {
  var r: Rows;
  for (var k_ = 0u; k_ < RL; k_++) {
    let e = tid + 256u * k_;
    let vrow = c * 64u + r0 + e / V;
    r[k_] = 0.0;
    if (e < 16u * V && vrow < dims.T) { r[k_] = P[vrow * NP + V_OFF + h * V + e % V]; }
  }
  return r;
}

// Loaded rows into sm[off ..] as [16][V].
fn put_rows(r: ptr<function, Rows>, off: u32, tid: u32) {
  for (var k_ = 0u; k_ < RL; k_++) {
    let e = tid + 256u * k_;
    if (e < 16u * V) { sm[off + e] = (*r)[k_]; }
  }
}

fn stage_state_rows(c: u32, h: u32, kb: u32, off: u32, tid: u32) {
  var r = load_state_rows(c, h, kb, tid);
  put_rows(&r, off, tid);
}

fn stage_values(c: u32, h: u32, r0: u32, off: u32, tid: u32) {
  var r = load_values(c, h, r0, tid);
  put_rows(&r, off, tid);
}

// The gate's sums: row_sum overwrites the first 256 floats of sm (after a barrier).

// The sum of x over the TPR invocations of row r (every invocation of the workgroup calls it).
fn row_sum(x: f32, r: u32, g: u32) -> f32 {
  workgroupBarrier();
  sm[r * TPR + g] = x;
  workgroupBarrier();
  var s = 0.0;
  for (var j = 0u; j < TPR; j++) { s += sm[r * TPR + j]; }
  return s;
}

// Gates row `row` (chunk row r, invocation g of it) of head h: o holds its
// columns, qkw = q . (k * w_aug). Rows past the prompt (!live) take part in
// the sums but write nothing.
fn gate_row(o: ptr<function, array<f32, VPT>>, qkw: f32, row: u32, h: u32, r: u32, g: u32, live: bool) {
  var sum = 0.0;
  for (var u = 0u; u < VPT; u++) {
    let col = col_of(g, u);
    if (col < V) {
      (*o)[u] += sigmoid(qkw * P[row * NP + V_OFF + h * V + col]);
      sum += (*o)[u];
    }
  }
  let mean = row_sum(sum, r, g) / f32(V);
  var sq = 0.0;
  for (var u = 0u; u < VPT; u++) {
    if (col_of(g, u) < V) { sq += ((*o)[u] - mean) * ((*o)[u] - mean); }
  }
  let inv = inverseSqrt(row_sum(sq, r, g) / f32(V) + 1e-5);
  if (live) {
    for (var u = 0u; u < VPT; u++) {
      let col = col_of(g, u);
      if (col < V) { O[row * D + h * V + col] = silu(P[row * NP + G_OFF + h * V + col]) * ((*o)[u] - mean) * inv; }
    }
  }
}
