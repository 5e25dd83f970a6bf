// Embedding gather: X[t] = table[token_t] * SCALE, for the tokens whose ids
// fall in this part of the table (rows LO .. LO + ROWS): tables larger than
// one storage binding are uploaded in parts and gathered part by part.
// The table is read as u32 words: f32 bits, or (F16) two f16 per word.
// Host constants: D, LO, ROWS, F16: bool; SCALE: f32.

struct Dims { T: u32, nC: u32, start: u32, pad: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read_write> X: array<f32>;

fn table_at(i: u32) -> f32 {
  if (F16) { return unpack2x16float(table[i / 2u])[i % 2u]; }
  return bitcast<f32>(table[i]);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let t = gid.y;
  if (i >= D || t >= dims.T) { return; }
  let id = tokens[t];
  if (id < LO || id >= LO + ROWS) { return; }
  X[t * D + i] = table_at((id - LO) * D + i) * SCALE;
}
