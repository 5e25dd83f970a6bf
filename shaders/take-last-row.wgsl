// The last layer of a call that wants the last row's logits only: once its
// token mixer has run, the state is complete and no other row's residual
// stream is read again, so the channel mix runs on the last row alone, with
// the decode step's one-row kernels (gemv.wgsl), which work on row 0. This
// moves row T - 1 of the residual stream X and of the mixer's output O
// there. X's row is complete: the layer's token norm added the split-K
// sums of the product before it.
// Host constant: D.

struct Dims { T: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) tid: u32) {
  let src = (dims.T - 1u) * D;
  // (a constant trip count: the loads are issued together)
  for (var k_ = 0u; k_ < (D + 255u) / 256u; k_++) {
    let i = tid + 256u * k_;
    if (i >= D) { break; }
    X[i] = X[src + i];
    O[i] = O[src + i];
  }
}
