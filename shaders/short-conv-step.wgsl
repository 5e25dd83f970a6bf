// One token (decode steps): the token mixer's pre-norm, the short conv + SiLU
// and the conv state shift in one dispatch (what norm.wgsl, short-conv.wgsl
// and short-conv-state.wgsl do for a chunk). One workgroup.
//   xn = norm(x);  Cv[i] = silu(w[i] . [state rows, xn][i]);  state <- [state rows 1, 2, xn]
// Needs math.wgsl. Host constants: D, LAYERNORM: bool.

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> nw: array<f32>;
@group(0) @binding(2) var<storage, read> nb: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;
@group(0) @binding(5) var<storage, read_write> Cv: array<f32>;

const NT: u32 = 256u;

const PER: u32 = (D + NT - 1u) / NT;  // features per invocation

@compute @workgroup_size(NT)
fn main(@builtin(local_invocation_index) tid: u32) {
  // the conv state and weights of this invocation's features are loaded
  // before the norm's reductions, which they do not wait for
  var st: array<vec3<f32>, PER>;
  var wt: array<vec4<f32>, PER>;
  for (var j = 0u; j < PER; j++) {
    let i = tid + j * NT;
    if (i < D) {
      st[j] = vec3<f32>(state[i], state[D + i], state[2u * D + i]);
      wt[j] = vec4<f32>(w[4u * i], w[4u * i + 1u], w[4u * i + 2u], w[4u * i + 3u]);
    }
  }
  var mean = 0.0;
  var inv = 0.0;
  if (LAYERNORM) {
    var s = 0.0;
    for (var i = tid; i < D; i += NT) { s += X[i]; }
    mean = sum_all(s, tid) / f32(D);
    var q = 0.0;
    for (var i = tid; i < D; i += NT) { q += (X[i] - mean) * (X[i] - mean); }
    inv = inverseSqrt(sum_all(q, tid) / f32(D) + 1e-5);
  } else {
    var q = 0.0;
    for (var i = tid; i < D; i += NT) { q += X[i] * X[i]; }
    inv = inverseSqrt(sum_all(q, tid) / f32(D) + 1e-6);
  }
  for (var j = 0u; j < PER; j++) {
    let i = tid + j * NT;
    if (i < D) {
      var xn = (X[i] - mean) * inv;
      if (LAYERNORM) { xn = xn * nw[i] + nb[i]; }
      let c = st[j];
      Cv[i] = silu(wt[j].x * c.x + wt[j].y * c.y + wt[j].z * c.z + wt[j].w * xn);
      state[i] = c.y;
      state[D + i] = c.z;
      state[2u * D + i] = xn;
    }
  }
}
