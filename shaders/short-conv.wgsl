// Short causal depthwise conv (kernel 4, no bias) + SiLU over a chunk of
// tokens, continuing from the conv state (the previous 3 inputs, oldest
// first), and the conv state after the chunk (its last 3 inputs):
//   Cv[t][i] = silu(sum_j w[i][j] * x_{t-3+j}[i])
// One thread per channel and R consecutive tokens, sliding its window of
// inputs. Only the first block of tokens reads the old state (R >= 3), so
// its threads alone rewrite their channel of it, after reading: no other
// workgroup touches the state, and no second dispatch is needed.
// Needs math.wgsl. Host constants: D, R (tokens per thread, >= 3).

struct Dims { T: u32, nC: u32, start: u32, pad: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;
@group(0) @binding(4) var<storage, read_write> Cv: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let t0 = gid.y * R;
  let T = dims.T;
  if (i >= D || t0 >= T) { return; }
  // inputs t0 - 3 .. t0 - 1: from the chunk, or (first block) the state before it
  var win: array<f32, 3>;
  for (var j = 0u; j < 3u; j++) {
    if (t0 >= 3u - j) { win[j] = X[(t0 - 3u + j) * D + i]; } else { win[j] = state[j * D + i]; }
  }
  let old = win;
  let wi = array<f32, 4>(w[i * 4u], w[i * 4u + 1u], w[i * 4u + 2u], w[i * 4u + 3u]);
  for (var r = 0u; r < R; r++) {
    let t = t0 + r;
    if (t >= T) { break; }
    let x = X[t * D + i];
    Cv[t * D + i] = silu(fma(wi[3], x, fma(wi[2], win[2], fma(wi[1], win[1], fma(wi[0], win[0], 0.0)))));
    win = array<f32, 3>(win[1], win[2], x);
  }
  if (gid.y == 0u) {
    // row r of the new state is input T - 3 + r of (old state ++ chunk)
    for (var r = 0u; r < 3u; r++) {
      if (T + r >= 3u) { state[r * D + i] = X[(T + r - 3u) * D + i]; } else { state[r * D + i] = old[T + r]; }
    }
  }
}
