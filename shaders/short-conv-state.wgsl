// The conv state after a chunk: the last 3 inputs of (old state ++ chunk),
// oldest first. Runs after short-conv.wgsl has read the old state; each
// thread owns one channel, so reading and rewriting it in place is safe.
// Host constant: D.

struct Dims { T: u32, nC: u32, start: u32, pad: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= D) { return; }
  let T = dims.T;
  var rows: array<f32, 3>;
  for (var r = 0u; r < 3u; r++) {
    // row r of the new state is input T - 3 + r of the sequence (state ++ chunk)
    let pos = T + r;  // index into (state ++ chunk) counting the 3 state rows first
    if (pos >= 3u) { rows[r] = X[(pos - 3u) * D + i]; } else { rows[r] = state[pos * D + i]; }
  }
  for (var r = 0u; r < 3u; r++) { state[r * D + i] = rows[r]; }
}
