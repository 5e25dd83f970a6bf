// The recurrent GLA for one token (decode steps), fused with what follows
// it, per head (spec §2 steps 3-6 and the gate), one workgroup per head:
//   gk = logsigmoid(a)/16, alpha = exp(gk), k = 1 - alpha
//   S = diag(alpha) S + k^T v;  o = (s q) S                 (update, then read)
//   o += sigmoid((q . (k * w_aug)) * v);  o = LayerNorm_V(o);  y = silu(g) * o
// Row 0 of P is the token's projections; y goes to row 0 of O.
// Needs math.wgsl. Host constants: H, K, V, DK, D, NP, Q_OFF, A_OFF, V_OFF, G_OFF; SCALE: f32.

@group(0) @binding(0) var<storage, read> P: array<f32>;
@group(0) @binding(1) var<storage, read> waug: array<f32>;
@group(0) @binding(2) var<storage, read_write> S: array<f32>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;

const NT: u32 = 256u;
var<workgroup> alpha: array<f32, K>;
var<workgroup> key: array<f32, K>;
var<workgroup> qs: array<f32, K>;
var<workgroup> ov: array<f32, V>;
const KP: u32 = max(1u, NT / V);
const KS: u32 = (K + KP - 1u) / KP;
var<workgroup> partial: array<f32, KP * V>;

// Value columns per invocation (several only where KP * V > NT), and the
// state slices it updates: entries (h, k0 + t, j % V) of column j, t < KS,
// k0 = (j / V) * KS (those below K), at s[jj * KS + t] for j = tid + jj * NT.
const JS: u32 = (KP * V + NT - 1u) / NT;
var<private> s: array<f32, JS * KS>;

@compute @workgroup_size(NT)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let h = wid.x;
  // KP threads share each value column j % V, each running a slice of the
  // K rows: the serial chain per thread is K / KP updates long. The state
  // entries of its slices are all loaded first (constant trip counts),
  // before the decays' reductions, which they do not wait for.
  for (var jj = 0u; jj < JS; jj++) {
    let j = tid + jj * NT;
    let k0 = (j / V) * KS;
    for (var t = 0u; t < KS; t++) {
      if (j < KP * V && k0 + t < K) { s[jj * KS + t] = S[(h * K + k0 + t) * V + j % V]; }
    }
  }
  var part = 0.0;
  for (var k = tid; k < K; k += NT) {
    let gk = logsigmoid(P[A_OFF + h * K + k]) / 16.0;
    let q = P[Q_OFF + h * K + k];
    alpha[k] = exp(gk);
    key[k] = -expm1_f(gk);
    qs[k] = q;
    part += q * key[k] * waug[h * K + k];
  }
  let aug = sum_all(part, tid);  // its barriers also publish alpha, key, qs
  for (var jj = 0u; jj < JS; jj++) {
    let j = tid + jj * NT;
    if (j < KP * V) {
      let v = j % V;
      let k0 = (j / V) * KS;
      let vv = P[V_OFF + h * V + v];
      var acc = 0.0;
      for (var t = 0u; t < KS; t++) {
        let k = k0 + t;
        if (k < K) {
          let x = fma(alpha[k], s[jj * KS + t], key[k] * vv);
          S[(h * K + k) * V + v] = x;
          acc = fma(qs[k], x, acc);
        }
      }
      partial[j] = acc;
    }
  }
  workgroupBarrier();
  var sum = 0.0;
  for (var v = tid; v < V; v += NT) {
    var acc = 0.0;
    for (var sl = 0u; sl < KP; sl++) { acc += partial[sl * V + v]; }
    let o = SCALE * acc + sigmoid(aug * P[V_OFF + h * V + v]);
    ov[v] = o;
    sum += o;
  }
  let mean = sum_all(sum, tid) / f32(V);
  var sq = 0.0;
  for (var v = tid; v < V; v += NT) { sq += (ov[v] - mean) * (ov[v] - mean); }
  let inv = inverseSqrt(sum_all(sq, tid) / f32(V) + 1e-5);
  for (var v = tid; v < V; v += NT) {
    O[h * V + v] = silu(P[G_OFF + h * V + v]) * (ov[v] - mean) * inv;
  }
}
