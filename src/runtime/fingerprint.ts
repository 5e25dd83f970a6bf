import type { WeightSource } from "../model/source.js";
import { expectedTensors, layerTensorName } from "../model/names.js";
import { crc32, fnv1a32 } from "./checksum.js";

/**
 * Identifies a model, so that a snapshot taken on one is refused by another:
 * the config, every tensor's name, shape and stored dtype, and the values of
 * the small per-layer tensors (conv1d, aug_balance, g_proj bias). Shapes alone
 * would let two fine-tunes of one architecture swap states; the small tensors
 * tell them apart while reading only ~5 floats per hidden unit per layer.
 * It identifies, it does not authenticate: 64 bits, not a cryptographic hash.
 */
export async function modelFingerprint(source: WeightSource): Promise<string> {
  const enc = new TextEncoder();
  let a = 0;
  let b = 0x811c9dc5;
  const feed = (bytes: Uint8Array) => {
    a = crc32(bytes, a);
    b = fnv1a32(bytes, b);
  };
  const c = source.config;
  feed(enc.encode(JSON.stringify(c)));
  for (const t of expectedTensors(c)) {
    if (!source.has(t.name)) continue;
    feed(enc.encode(`${t.name}:${source.shape(t.name).join("x")}:${source.storedDType(t.name)};`));
  }
  for (let i = 0; i < c.numLayers; i++)
    for (const t of ["conv1d", "aug_balance", "g_proj_bias"] as const) {
      const name = layerTensorName(i, t);
      const values = await source.read(name);
      feed(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    }
  return hex8(a) + hex8(b);
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}
