import { MetalaError } from "../errors.js";
import { convertBF16ToF32, convertF16ToF32 } from "../model/dtype.js";
import type { StoredDType } from "../model/source.js";
import type { ByteSource } from "./byte-source.js";
import { quote, type SafetensorsTensor } from "./safetensors.js";

/**
 * Bytes per read. Large enough that per-request overhead (a syscall, an HTTP
 * round trip) is small next to the transfer, small enough that the scratch
 * buffer for 16-bit weights adds little to peak memory.
 */
export const DEFAULT_PIECE_BYTES = 8 * 1024 * 1024;

export const WEIGHT_DTYPES: readonly StoredDType[] = ["F32", "F16", "BF16"];

export function isWeightDType(dtype: string): dtype is StoredDType {
  return (WEIGHT_DTYPES as readonly string[]).includes(dtype);
}

/**
 * Reads one tensor as f32 into `dest` in pieces of at most `pieceBytes` of
 * stored data: f32 bytes go straight into `dest`'s memory; f16/bf16 pass
 * through one reused scratch piece. Nothing the size of the tensor's stored
 * form is ever allocated.
 */
export async function readTensorF32(
  source: ByteSource,
  tensor: SafetensorsTensor,
  dest: Float32Array,
  pieceBytes = DEFAULT_PIECE_BYTES,
): Promise<Float32Array> {
  const count = tensor.shape.reduce((a, b) => a * b, 1);
  if (dest.length !== count) throw new RangeError(`tensor ${tensor.name}: destination holds ${dest.length} values, the tensor ${count}`);
  const dtype = tensor.dtype;
  if (dtype === "F32") {
    const bytes = new Uint8Array(dest.buffer, dest.byteOffset, count * 4);
    const step = Math.max(4, pieceBytes - (pieceBytes % 4));
    for (let done = 0; done < bytes.length; done += step) {
      const n = Math.min(step, bytes.length - done);
      await source.read(tensor.begin + done, n, bytes.subarray(done, done + n));
    }
    return dest;
  }
  if (dtype !== "F16" && dtype !== "BF16")
    throw new MetalaError("weights", `${source.label}: tensor ${quote(tensor.name)} is ${dtype}; only F32, F16 and BF16 weights are supported`);
  const convert = dtype === "F16" ? convertF16ToF32 : convertBF16ToF32;
  const stepValues = Math.max(1, Math.floor(pieceBytes / 2));
  const scratch = new Uint8Array(Math.min(stepValues, count) * 2);
  const halves = new Uint16Array(scratch.buffer);
  for (let done = 0; done < count; done += stepValues) {
    const n = Math.min(stepValues, count - done);
    await source.read(tensor.begin + done * 2, n * 2, scratch.subarray(0, n * 2));
    convert(halves.subarray(0, n), dest.subarray(done, done + n));
  }
  return dest;
}
