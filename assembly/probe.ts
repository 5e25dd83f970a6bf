// Memory read bandwidth probe: the loads the mat-vec kernels issue (128-bit,
// sequential, four streams in flight, as four weight rows are), over blocks
// [r0, r1) of `blockBytes` each, every block read as four quarters side by
// side. The xor of everything read goes to out[tid] so that the loads
// cannot be optimised away.
export function readBandwidth(base: usize, blockBytes: i32, out: usize, r0: i32, r1: i32, tid: i32): void {
  let a = i32x4.splat(0), b = i32x4.splat(0), c = i32x4.splat(0), d = i32x4.splat(0);
  const q = <usize>blockBytes >> 2;
  for (let r = r0; r < r1; r++) {
    const p0 = base + <usize>r * <usize>blockBytes;
    const p1 = p0 + q, p2 = p1 + q, p3 = p2 + q;
    for (let o: usize = 0; o < q; o += 32) {
      a = v128.xor(a, v128.load(p0 + o));
      b = v128.xor(b, v128.load(p1 + o));
      c = v128.xor(c, v128.load(p2 + o));
      d = v128.xor(d, v128.load(p3 + o));
      a = v128.xor(a, v128.load(p0 + o, 16));
      b = v128.xor(b, v128.load(p1 + o, 16));
      c = v128.xor(c, v128.load(p2 + o, 16));
      d = v128.xor(d, v128.load(p3 + o, 16));
    }
  }
  v128.store(out + (<usize>tid << 4), v128.xor(v128.xor(a, b), v128.xor(c, d)));
}
