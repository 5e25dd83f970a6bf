// Chunked GLA, pass 1 of 3: each 64-token chunk's own contribution to the
// state at its end (spec §4), per head:
//   U_c = sum_s (k_s * exp(b_last - b_s))^T v_s        [K, V]
// every exponent <= 0. Workgroup = (chunk, head); the chunk's keys and
// values are staged 16 tokens at a time, the next 16's loads in flight
// while the current ones are multiplied.
// The value columns may be split over VS workgroups (grid z, VW = V / VS
// columns each), to keep a GPU busy when there are few (chunk, head) pairs.
//
// The product is bound by workgroup-memory loads, not FMAs (one warp-wide
// load issues per clock per multiprocessor): so each thread owns a register
// tile of TK key rows x 4 consecutive value columns (one vec4), and per
// token loads the 4 values as one vec4 and its TK keys (as TK / 4 vec4 when
// TK >= 4), TK + 1 or TK / 4 + 1 loads for 4 TK FMAs. The host picks TK
// (1, 2, 4, 8) as large as keeps all 256 threads busy. Staged rows are
// zero-padded: keys to KP (a multiple of 4 and of TK), values to 4 VQ, so
// any K and VW work. Each output still sums its tokens in order.
// Host constants: H, K, V, DK, NP (projection row stride), V_OFF (column of v), VS, TK.

struct Dims { T: u32, nC: u32, start: u32, pad: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> P: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read> Kk: array<f32>;
@group(0) @binding(4) var<storage, read_write> U: array<f32>;

const NT: u32 = 256u;
const VW: u32 = V / VS;
const VQ: u32 = (VW + 3u) / 4u;          // value quads of the slice
const NKB: u32 = (K + TK - 1u) / TK;     // key-row blocks
const KP: u32 = (NKB * TK + 3u) / 4u * 4u; // staged key row length
const KQ: u32 = KP / 4u;
const NB: u32 = NKB * VQ;                // register tiles
const IPT: u32 = (NB + NT - 1u) / NT;    // tiles per thread

var<workgroup> kd: array<vec4<f32>, 16u * KQ>;
var<workgroup> vs: array<vec4<f32>, 16u * VQ>;

// A block's staged values, as loaded, per thread: (key, its running decay,
// the chunk's last running decay) for KL key elements, VL values.
const KL: u32 = (16u * KP + NT - 1u) / NT;
const VL: u32 = (64u * VQ + NT - 1u) / NT;
struct Block { k: array<f32, KL>, b: array<f32, KL>, bl: array<f32, KL>, v: array<f32, VL> }

// Block s0's loads only (a short prompt runs one or two workgroups per
// multiprocessor, so nothing else hides their latency): issued before the
// current block's products, used after them.
fn load_block(c: u32, h: u32, v0: u32, s0: u32, tid: u32) -> Block {
  var r: Block;
  let last = (c * 64u + 63u) * DK + h * K;
  for (var k_ = 0u; k_ < KL; k_++) {
    let e = tid + NT * k_;
    let k = e % KP;
    r.k[k_] = 0.0;
    r.b[k_] = 0.0;
    r.bl[k_] = 0.0;
    if (e < 16u * KP && k < K) {
      let i = (c * 64u + s0 + e / KP) * DK + h * K + k;
      r.k[k_] = Kk[i];
      r.b[k_] = B[i];
      r.bl[k_] = B[last + k];
    }
  }
  for (var k_ = 0u; k_ < VL; k_++) {
    let e = tid + NT * k_;
    let row = c * 64u + s0 + e / (4u * VQ);
    let v = e % (4u * VQ);
    r.v[k_] = 0.0;
    if (e < 64u * VQ && v < VW && row < dims.T) { r.v[k_] = P[row * NP + V_OFF + h * V + v0 + v]; }
  }
  return r;
}

// The keys rescaled to the chunk's end (every exponent <= 0) and the values, into workgroup memory.
fn stage_block(r: ptr<function, Block>, tid: u32) {
  for (var k_ = 0u; k_ < KL; k_++) {
    let e = tid + NT * k_;
    if (e < 16u * KP) { kd[e / 4u][e % 4u] = (*r).k[k_] * exp((*r).bl[k_] - (*r).b[k_]); }
  }
  for (var k_ = 0u; k_ < VL; k_++) {
    let e = tid + NT * k_;
    if (e < 64u * VQ) { vs[e / 4u][e % 4u] = (*r).v[k_]; }
  }
}

@compute @workgroup_size(NT)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x;
  let h = wid.y;
  let v0 = wid.z * VW;
  var acc: array<vec4<f32>, IPT * TK>;
  var blk = load_block(c, h, v0, 0u, tid);
  for (var s0 = 0u; s0 < 64u; s0 += 16u) {
    stage_block(&blk, tid);
    workgroupBarrier();
    if (s0 + 16u < 64u) { blk = load_block(c, h, v0, s0 + 16u, tid); }
    for (var i = 0u; i < IPT; i++) {
      let e = tid + i * NT;
      if (e < NB) {
        let kb = e / VQ;
        let vq = e % VQ;
        for (var s = 0u; s < 16u; s++) {
          let v = vs[s * VQ + vq];
          if (TK >= 4u) {
            for (var t4 = 0u; t4 < TK / 4u; t4++) {
              let kk = kd[s * KQ + kb * (TK / 4u) + t4];
              for (var t = 0u; t < 4u; t++) {
                let a = i * TK + t4 * 4u + t;
                acc[a] = fma(vec4<f32>(kk[t]), v, acc[a]);
              }
            }
          } else {
            for (var t = 0u; t < TK; t++) {
              let k = s * KP + kb * TK + t;
              acc[i * TK + t] = fma(vec4<f32>(kd[k / 4u][k % 4u]), v, acc[i * TK + t]);
            }
          }
        }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < IPT; i++) {
    let e = tid + i * NT;
    if (e < NB) {
      let kb = e / VQ;
      let vq = e % VQ;
      for (var t = 0u; t < TK; t++) {
        let k = kb * TK + t;
        for (var j = 0u; j < 4u; j++) {
          let v = vq * 4u + j;
          if (k < K && v < VW) { U[(c * H + h) * K * V + k * V + v0 + v] = acc[i * TK + t][j]; }
        }
      }
    }
  }
}
