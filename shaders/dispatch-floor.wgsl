// The cheapest dispatch that must wait for the one before it: one
// workgroup adding to the buffer the previous dispatch wrote. Timed many
// times over in one pass, it gives what each dispatch of a forward pass
// costs before any work (launch plus the barrier between dependent
// dispatches).

@group(0) @binding(0) var<storage, read_write> b: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  b[gid.x] = b[gid.x] + 1.0;
}
