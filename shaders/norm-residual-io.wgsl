// norm.wgsl's input when the product before it was split over K
// (gemm.wgsl, SPLIT): X[row] += bias + the dims.splits partial sums, stored
// [split][rows][D] for the product's dims.start + dims.T rows. With
// dims.splits = 0 the product added into X itself and X is left as it is.
// Host constant: MAX_SPLITS (the most slices any product is cut in).

struct Dims { T: u32, nC: u32, start: u32, splits: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> X: array<f32>;
@group(0) @binding(5) var<storage, read> partials: array<f32>;
@group(0) @binding(6) var<storage, read> pbias: array<f32>;

fn fold_residual(row: u32, tid: u32) {
  let S = dims.splits;
  if (S == 0u) { return; }
  let rows = dims.start + dims.T;
  // (a constant trip count, not i < D from tid: the compiler unrolls it and issues the loads together)
  for (var k_ = 0u; k_ < (D + NT - 1u) / NT; k_++) {
    let i = tid + NT * k_;
    if (i >= D) { break; }
    var x = X[row * D + i] + pbias[i];
    for (var z = 0u; z < MAX_SPLITS; z++) { if (z < S) { x += partials[(z * rows + row) * D + i]; } }
    X[row * D + i] = x;
  }
}
