// Parameters and bindings shared by gemm.wgsl and gemv.wgsl (the weights W
// are bound by weights-*.wgsl at binding 3): one host-side dispatch layout
// for the chunk and the one-token products.

struct Params {
  N: u32,
  K: u32,
  lda: u32,    // row stride of A in floats
  ldc: u32,    // row stride of C in floats (in output columns for EPILOGUE 2)
  a_off: u32,  // offset of A's first element in floats
  c_off: u32,
  w_off: u32,
  b_off: u32,
}
struct Rows { M: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> rows: Rows;
@group(0) @binding(2) var<storage, read> A: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> C: array<f32>;
