// Read-bandwidth probe: every thread sums a grid-strided share of a large
// buffer and writes one value (so the reads cannot be optimised away).
// Host constant: THREADS (total threads of the dispatch).

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = arrayLength(&src);
  var acc = vec4<f32>(0.0);
  for (var i = gid.x; i < n; i += THREADS) { acc += src[i]; }
  dst[gid.x] = acc.x + acc.y + acc.z + acc.w;
}
