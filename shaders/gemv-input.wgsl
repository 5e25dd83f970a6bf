// The input row of gemv.wgsl as stored: load_a(i) is elements 4i .. 4i+3 of A.

fn prepare_a(tid: u32) {}

fn load_a(i: u32) -> vec4<f32> {
  return A[i];
}
