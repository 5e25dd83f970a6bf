// Memory read bandwidth probe: the same loads the mat-vec kernels issue
// (128-bit, sequential, four streams in flight), over blocks [r0, r1) of
// `blockBytes` each. The xor of everything read goes to out[tid] so that
// the loads cannot be optimised away.
export function readBandwidth(base: usize, blockBytes: i32, out: usize, r0: i32, r1: i32, tid: i32): void {
  let a = i32x4.splat(0), b = i32x4.splat(0), c = i32x4.splat(0), d = i32x4.splat(0);
  const bb = <usize>blockBytes;
  for (let r = r0; r < r1; r++) {
    const p = base + <usize>r * bb;
    for (let o: usize = 0; o < bb; o += 64) {
      a = v128.xor(a, v128.load(p + o));
      b = v128.xor(b, v128.load(p + o, 16));
      c = v128.xor(c, v128.load(p + o, 32));
      d = v128.xor(d, v128.load(p + o, 48));
    }
  }
  v128.store(out + (<usize>tid << 4), v128.xor(v128.xor(a, b), v128.xor(c, d)));
}
