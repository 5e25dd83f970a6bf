// norm.wgsl's input as stored: rows dims.start .. dims.start + dims.T of X.

struct Dims { T: u32, nC: u32, start: u32, splits: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> X: array<f32>;

fn fold_residual(row: u32, tid: u32) {}
