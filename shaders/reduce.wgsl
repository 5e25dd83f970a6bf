// A sum over the NT invocations of a workgroup (NT: the including shader's
// workgroup size, a power of two). Every invocation must call it, and every
// one gets the total.

var<workgroup> red: array<f32, NT>;

fn sum_all(x: f32, tid: u32) -> f32 {
  red[tid] = x;
  workgroupBarrier();
  for (var s = NT / 2u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] += red[tid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
