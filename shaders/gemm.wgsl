// Tiled matrix product for the projections of a chunk of tokens:
//   C[m, n] (op)= sum_k A[m, k] * W[n, k] + bias[n]
// A is row-major activations [M, K] (row stride p.lda), W a torch Linear
// weight [N, K] (row-major, K contiguous), both read as vec4 along K, so K
// and the strides/offsets must be multiples of 4. W's binding and its
// reader load_w come from weights-f32.wgsl or weights-f16.wgsl.
//
// The host prepends the tile shape and the epilogue:
//   const BM, BN, BK, TM, TN: u32   workgroup tile BM x BN, K step BK,
//                                   each thread a TM x TN block of C
//   const EPILOGUE: u32             0 store, 1 add into C (residual),
//                                   2 gated unit: columns come in groups of
//                                   4 (2 of l1, then the same 2 of l2) and
//                                   C gets act(l1) * l2 at half the width
//   fn glu_act(x: f32) -> f32       the GLU activation (EPILOGUE 2 only)
//   const SPLIT: bool               split-K: workgroup z sums its own slice
//                                   of K and stores the bare partial sum at
//                                   C[(z * M + m) * N + n] (no bias, no
//                                   epilogue); the norm that reads the
//                                   residual next adds the slices up
//                                   (norm.wgsl, PARTIALS)
//
// Both tiles are staged in workgroup memory transposed (k-major), so the
// inner loop reads a column of A and a row of W as vec4s and does TM x TN
// FMAs per k. The next tile's global loads are issued into registers before
// the current tile is consumed, which hides most of the load latency.

const WX: u32 = BN / TN;
const WY: u32 = BM / TM;
const NT: u32 = WX * WY;
const KQ: u32 = BK / 4u;              // vec4s per tile row
// vec4 loads per thread for the A and W tiles; where a tile's vec4s do not
// divide evenly over the threads (BN = 88), the last round is guarded (a
// constant test, folded away for the even tiles)
const LA: u32 = (BM * KQ + NT - 1u) / NT;
const LB: u32 = (BN * KQ + NT - 1u) / NT;
const A_EVEN: bool = BM * KQ % NT == 0u;
const B_EVEN: bool = BN * KQ % NT == 0u;
// A padded row (+4 floats) spreads the transposed stores over the banks.
const SA: u32 = BM + 4u;
const SB: u32 = BN + 4u;

// Each staged tile is indexed [k][row quad], not flat: WebGPU clamps every
// index into bounds, and a flat index's clamp takes the K step in; here the
// k part is a constant once the inner loop is unrolled and the row part's
// clamp does not change along K. H200, whole prefills against the flat
// tiles (builds alternating calls in one process, best ms): 512
// 11.90-12.07 against 11.97-12.04 (three runs: +0.2, -0.6, -0.6%), 832
// 18.07 against 18.54, 1024 21.13-21.38 against 21.50-21.80, 1536 30.57
// against 30.95, 2048 39.55-39.62 against 39.97-40.17, 3072 56.58 against
// 57.37; but 576 14.35-14.48 against 14.20-14.35 and 768 16.45-16.59
// against 16.32-16.54 (the 64x64 tile alone ~2% slower); 4096 and 8192
// within 0.2%.
var<workgroup> As: array<array<vec4<f32>, SA / 4u>, BK>;
var<workgroup> Bs: array<array<vec4<f32>, SB / 4u>, BK>;

@compute @workgroup_size(NT)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let M = rows.M;
  let N = p.N;
  // this workgroup's K range [kb, K): all of it, or slice z of nwg.z (whole BK steps)
  var kb = 0u;
  var K = p.K;
  if (SPLIT) {
    let slice = (p.K + nwg.z * BK - 1u) / (nwg.z * BK) * BK;
    kb = min(p.K, wid.z * slice);
    K = min(p.K, kb + slice);
  }
  let tx = tid % WX;
  let ty = tid / WX;
  let m0 = wid.y * BM;
  let n0 = wid.x * BN;

  var acc: array<vec4<f32>, TM * TN / 4u>;
  var ra: array<vec4<f32>, LA>;
  var rb: array<vec4<f32>, LB>;

  // Tile loads: consecutive threads take consecutive vec4s of one row.
  for (var i = 0u; i < LA; i++) {
    let e = tid + i * NT;
    let r = m0 + e / KQ;
    let k = kb + (e % KQ) * 4u;
    let ok = r < M && k < K && (A_EVEN || e < BM * KQ);
    ra[i] = select(vec4<f32>(0.0), A[(p.a_off + min(r, M - 1u) * p.lda + min(k, p.K - 4u)) / 4u], ok);
  }
  for (var i = 0u; i < LB; i++) {
    let e = tid + i * NT;
    let r = n0 + e / KQ;
    let k = kb + (e % KQ) * 4u;
    let ok = r < N && k < K && (B_EVEN || e < BN * KQ);
    rb[i] = select(vec4<f32>(0.0), load_w((p.w_off + min(r, N - 1u) * p.K + min(k, p.K - 4u)) / 4u), ok);
  }

  for (var k0 = kb; k0 < K; k0 += BK) {
    for (var i = 0u; i < LA; i++) {
      let e = tid + i * NT;
      if (!A_EVEN && e >= BM * KQ) { break; }
      let r = e / KQ;
      let k = (e % KQ) * 4u;
      let v = ra[i];
      As[k + 0u][r / 4u][r % 4u] = v.x;
      As[k + 1u][r / 4u][r % 4u] = v.y;
      As[k + 2u][r / 4u][r % 4u] = v.z;
      As[k + 3u][r / 4u][r % 4u] = v.w;
    }
    for (var i = 0u; i < LB; i++) {
      let e = tid + i * NT;
      if (!B_EVEN && e >= BN * KQ) { break; }
      let r = e / KQ;
      let k = (e % KQ) * 4u;
      let v = rb[i];
      Bs[k + 0u][r / 4u][r % 4u] = v.x;
      Bs[k + 1u][r / 4u][r % 4u] = v.y;
      Bs[k + 2u][r / 4u][r % 4u] = v.z;
      Bs[k + 3u][r / 4u][r % 4u] = v.w;
    }
    workgroupBarrier();

    let kn = k0 + BK;
    if (kn < K) {
      for (var i = 0u; i < LA; i++) {
        let e = tid + i * NT;
        let r = m0 + e / KQ;
        let k = kn + (e % KQ) * 4u;
        let ok = r < M && k < K && (A_EVEN || e < BM * KQ);
        ra[i] = select(vec4<f32>(0.0), A[(p.a_off + min(r, M - 1u) * p.lda + min(k, p.K - 4u)) / 4u], ok);
      }
      for (var i = 0u; i < LB; i++) {
        let e = tid + i * NT;
        let r = n0 + e / KQ;
        let k = kn + (e % KQ) * 4u;
        let ok = r < N && k < K && (B_EVEN || e < BN * KQ);
        rb[i] = select(vec4<f32>(0.0), load_w((p.w_off + min(r, N - 1u) * p.K + min(k, p.K - 4u)) / 4u), ok);
      }
    }

    for (var kk = 0u; kk < BK; kk++) {
      var a: array<vec4<f32>, TM / 4u>;
      var b: array<vec4<f32>, TN / 4u>;
      for (var i = 0u; i < TM / 4u; i++) { a[i] = As[kk][ty * (TM / 4u) + i]; }
      for (var j = 0u; j < TN / 4u; j++) { b[j] = Bs[kk][tx * (TN / 4u) + j]; }
      for (var i = 0u; i < TM; i++) {
        let ai = a[i / 4u][i % 4u];
        for (var j = 0u; j < TN / 4u; j++) {
          acc[i * (TN / 4u) + j] = fma(vec4<f32>(ai), b[j], acc[i * (TN / 4u) + j]);
        }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < TM; i++) {
    let r = m0 + ty * TM + i;
    if (r >= M) { break; }
    for (var j = 0u; j < TN / 4u; j++) {
      let c = n0 + tx * TN + j * 4u;
      if (c >= N) { break; }
      let v = acc[i * (TN / 4u) + j];
      if (SPLIT) {
        let o = (wid.z * M + r) * N + c;
        for (var q = 0u; q < 4u; q++) { if (c + q < N) { C[o + q] = v[q]; } }
      } else if (EPILOGUE == 2u) {
        // N is a multiple of 4 here: [l1 c, l1 c+1, l2 c, l2 c+1]
        let bb = vec4<f32>(bias[p.b_off + c], bias[p.b_off + c + 1u], bias[p.b_off + c + 2u], bias[p.b_off + c + 3u]);
        let h = v + bb;
        let o = p.c_off + r * p.ldc + c / 2u;
        C[o] = glu_act(h.x) * h.z;
        C[o + 1u] = glu_act(h.y) * h.w;
      } else {
        for (var q = 0u; q < 4u; q++) {
          let cq = c + q;
          if (cq < N) {
            let o = p.c_off + r * p.ldc + cq;
            let x = v[q] + bias[p.b_off + cq];
            if (EPILOGUE == 1u) { C[o] = C[o] + x; } else { C[o] = x; }
          }
        }
      }
    }
  }
}
