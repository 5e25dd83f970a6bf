// What follows the GLA per token and head (spec §2 steps 5-7), for an
// output kernel whose rows are each held by TPR invocations (columns g,
// g + TPR, ... of the head's V):
//   o += sigmoid((q . (k * w_aug)) * v)     self-augmentation, q unscaled
//   o  = LayerNorm_V(o)                     eps 1e-5, no affine
//   y  = silu(g) * o                        written to O
// Needs math.wgsl, and from the including kernel: the bindings P and O, the
// constants TPR, VPT, V, D, NP, V_OFF, G_OFF, and workgroup memory sm whose
// first 256 floats it may overwrite (after a barrier).

// The sum of x over the TPR invocations of row r (every invocation of the workgroup calls it).
fn row_sum(x: f32, r: u32, g: u32) -> f32 {
  workgroupBarrier();
  sm[r * TPR + g] = x;
  workgroupBarrier();
  var s = 0.0;
  for (var j = 0u; j < TPR; j++) { s += sm[r * TPR + j]; }
  return s;
}

// Gates row `row` (chunk row r, invocation g of it) of head h: o holds its
// columns, qkw = q . (k * w_aug). Rows past the prompt (!live) take part in
// the sums but write nothing.
fn gate_row(o: ptr<function, array<f32, VPT>>, qkw: f32, row: u32, h: u32, r: u32, g: u32, live: bool) {
  var sum = 0.0;
  for (var u = 0u; u < VPT; u++) {
    let col = g + TPR * u;
    if (col < V) {
      (*o)[u] += sigmoid(qkw * P[row * NP + V_OFF + h * V + col]);
      sum += (*o)[u];
    }
  }
  let mean = row_sum(sum, r, g) / f32(V);
  var sq = 0.0;
  for (var u = 0u; u < VPT; u++) {
    if (g + TPR * u < V) { sq += ((*o)[u] - mean) * ((*o)[u] - mean); }
  }
  let inv = inverseSqrt(row_sum(sq, r, g) / f32(V) + 1e-5);
  if (live) {
    for (var u = 0u; u < VPT; u++) {
      let col = g + TPR * u;
      if (col < V) { O[row * D + h * V + col] = silu(P[row * NP + G_OFF + h * V + col]) * ((*o)[u] - mean) * inv; }
    }
  }
}
