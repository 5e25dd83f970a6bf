// The one-token form of gemm.wgsl (decode steps): C[n] (op)= A[0, :] . W[n, :] + bias[n].
// Same bindings and parameters (gemm-io.wgsl) and epilogues as gemm.wgsl (W from weights-*.wgsl). A matrix-vector
// product is bound by reading W once, so the layout favours streaming:
// LANES threads per output row read it as consecutive vec4s, and the partial
// sums meet in workgroup memory. RB rows per workgroup (a multiple of 4, so
// that a gated-unit group [l1 r, l1 r+1, l2 r, l2 r+1] stays in one workgroup).
// The input row comes through load_a (gemv-input.wgsl as stored, or
// gemv-input-norm.wgsl normalised on the fly).
// Host constants: LANES (a power of two), RB; EPILOGUE as in gemm.wgsl; fn glu_act.

const UNROLL: u32 = 4u;
const NT: u32 = RB * LANES;
var<workgroup> part: array<f32, RB * LANES>;
var<workgroup> sums: array<f32, RB>;

@compute @workgroup_size(NT)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let lr = tid / LANES;
  let lane = tid % LANES;
  let n = wid.x * RB + lr;
  let live = n < p.N;
  let K4 = p.K / 4u;
  let w0 = (p.w_off + n * p.K) / 4u;
  let a0 = p.a_off / 4u;
  // UNROLL loads of W in flight per lane before their multiply-adds: a
  // lane that waited for each load in turn kept too few bytes in flight
  // to stream W (a d x 2816 product ran at 0.75 TB/s on an H200). The
  // first batch is issued before the input is prepared (the norm's
  // reductions in gemv-input-norm.wgsl), which it does not wait for.
  var w: array<vec4<f32>, UNROLL>;
  var k = lane;
  if (live && k + (UNROLL - 1u) * LANES < K4) {
    for (var u = 0u; u < UNROLL; u++) { w[u] = load_w(w0 + k + u * LANES); }
  }
  prepare_a(tid);
  var acc = vec4<f32>(0.0);
  if (live) {
    for (; k + (UNROLL - 1u) * LANES < K4; k += UNROLL * LANES) {
      if (k != lane) {
        for (var u = 0u; u < UNROLL; u++) { w[u] = load_w(w0 + k + u * LANES); }
      }
      for (var u = 0u; u < UNROLL; u++) { acc = fma(load_a(a0 + k + u * LANES), w[u], acc); }
    }
    for (; k < K4; k += LANES) { acc = fma(load_a(a0 + k), load_w(w0 + k), acc); }
  }
  part[tid] = acc.x + acc.y + acc.z + acc.w;
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { part[tid] += part[tid + s]; }
    workgroupBarrier();
  }
  if (lane == 0u && n < p.N) { sums[lr] = part[tid] + bias[p.b_off + n]; }
  workgroupBarrier();
  if (EPILOGUE == 2u) {
    // one thread per output of each group of 4 rows
    if (tid < RB / 2u) {
      let base = wid.x * RB + (tid / 2u) * 4u;  // first row of the group [l1 r, l1 r+1, l2 r, l2 r+1]
      let q = tid % 2u;
      if (base < p.N) {
        let l = base - wid.x * RB;
        C[p.c_off + base / 2u + q] = glu_act(sums[l + q]) * sums[l + 2u + q];
      }
    }
  } else if (tid < RB) {
    let c = wid.x * RB + tid;
    if (c < p.N) {
      let o = p.c_off + c;
      if (EPILOGUE == 1u) { C[o] = C[o] + sums[tid]; } else { C[o] = sums[tid]; }
    }
  }
}
