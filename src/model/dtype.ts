import { MetalaError } from "../errors.js";

/**
 * Conversions of stored 16-bit floats to f32. Inputs are the raw 16-bit
 * patterns (safetensors stores them little-endian, as every JS host is).
 */

/** One IEEE 754 binary16 pattern as a number (exact: every f16 is an f32). */
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1024 + fraction) * 2 ** (exponent - 25);
}

let f16Table: Float32Array | undefined;

/** All 65536 f16 values, built on first use: a lookup beats bit twiddling per element in JS. */
function f16Lookup(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = f16ToF32(i);
  }
  return f16Table;
}

export function convertF16ToF32(src: Uint16Array, dest: Float32Array): void {
  if (dest.length < src.length) throw new RangeError(`f16 conversion: destination holds ${dest.length} values, source ${src.length}`);
  const table = f16Lookup();
  const n = src.length;
  for (let i = 0; i < n; i++) dest[i] = table[src[i]];
}

/** bfloat16 is the top half of an f32: shifting the pattern up is exact (NaN payloads kept). */
export function convertBF16ToF32(src: Uint16Array, dest: Float32Array): void {
  if (dest.length < src.length) throw new RangeError(`bf16 conversion: destination holds ${dest.length} values, source ${src.length}`);
  // Int32: the shifted pattern is stored as is (a Uint32Array store would first convert the negative int32).
  const out = new Int32Array(dest.buffer, dest.byteOffset, src.length);
  const n = src.length;
  for (let i = 0; i < n; i++) out[i] = src[i] << 16;
}

/**
 * The error for a weight that f16 storage (--dtype f16) cannot hold: not
 * finite, or 65520 or more in magnitude (what does not round to 65504, the
 * largest f16). Stored anyway it would become infinity on the GPU and,
 * decoded by the CPU engine's exponent rebase, 65536 or more: a wrong
 * model, where the user is better served by an error naming the tensor and
 * the dtypes that do hold it.
 */
export function f16RangeError(where: string, value: number, index: number): MetalaError {
  return new MetalaError("weights", `${where} holds ${value} (element ${index}), which f16 cannot store (finite, |x| <= 65504): load it with --dtype f32, q8 or q4`);
}
