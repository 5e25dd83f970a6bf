import { MetalaError } from "../errors.js";
import type { MetalaConfig } from "../model/config.js";
import type { ModelState } from "../engine.js";
import { crc32 } from "./checksum.js";

/**
 * The snapshot of one session's state, a self-checking binary (all numbers
 * little-endian):
 *
 *   0  "METALA\x00S"  magic, 8 bytes
 *   8  u32 version (1)
 *  12  16 ASCII hex  model fingerprint (runtime/fingerprint.ts)
 *  28  u32 layers, u32 heads, u32 K, u32 V, u32 d   (for a clear message on a mismatch)
 *  48  f64 position (tokens consumed; an exact integer)
 *  56  per layer: S f32[H*K*V], then conv f32[3*d] (oldest row first)
 * end-4 u32 CRC-32 of every byte before it
 *
 * The header is 56 bytes, so the float data starts 4-aligned.
 */
const MAGIC = [0x4d, 0x45, 0x54, 0x41, 0x4c, 0x41, 0x00, 0x53]; // "METALA\0S"
const VERSION = 1;
const HEADER_BYTES = 56;
/** Typed arrays use the host's byte order; where that is little-endian (all mainstream hosts) floats copy in bulk. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface SnapshotHeader {
  version: number;
  fingerprint: string;
  numLayers: number;
  numHeads: number;
  headKeyDim: number;
  headValueDim: number;
  hiddenSize: number;
  position: number;
}

function stateBytes(h: { numLayers: number; numHeads: number; headKeyDim: number; headValueDim: number; hiddenSize: number }): number {
  return h.numLayers * 4 * (h.numHeads * h.headKeyDim * h.headValueDim + 3 * h.hiddenSize);
}

export function encodeSnapshot(state: ModelState, config: MetalaConfig, fingerprint: string): Uint8Array {
  const total = HEADER_BYTES + stateBytes(config) + 4;
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  view.setUint32(8, VERSION, true);
  bytes.set(new TextEncoder().encode(fingerprint.padEnd(16, "0").slice(0, 16)), 12);
  [config.numLayers, config.numHeads, config.headKeyDim, config.headValueDim, config.hiddenSize].forEach((v, i) =>
    view.setUint32(28 + 4 * i, v, true),
  );
  view.setFloat64(48, state.position, true);
  let off = HEADER_BYTES;
  for (const layer of state.layers)
    for (const arr of [layer.S, layer.conv]) {
      if (LITTLE_ENDIAN) new Float32Array(bytes.buffer, off, arr.length).set(arr);
      else for (let i = 0; i < arr.length; i++) view.setFloat32(off + 4 * i, arr[i], true);
      off += 4 * arr.length;
    }
  view.setUint32(off, crc32(bytes.subarray(0, off)), true);
  return bytes;
}

/** Reads and checks the header only (magic, version, size, checksum); the state is not decoded. */
export function readSnapshotHeader(bytes: Uint8Array): SnapshotHeader {
  if (!(bytes instanceof Uint8Array)) throw new MetalaError("format", "snapshot: expected bytes (a Uint8Array)");
  if (bytes.length < HEADER_BYTES + 4 || MAGIC.some((m, i) => bytes[i] !== m))
    throw new MetalaError("format", "snapshot: not a MetaLA state snapshot (bad magic)");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== VERSION)
    throw new MetalaError("format", `snapshot: version ${version} is not supported (this runtime reads version ${VERSION})`);
  const dims = [0, 1, 2, 3, 4].map((i) => view.getUint32(28 + 4 * i, true));
  const h: SnapshotHeader = {
    version,
    fingerprint: new TextDecoder().decode(bytes.subarray(12, 28)),
    numLayers: dims[0],
    numHeads: dims[1],
    headKeyDim: dims[2],
    headValueDim: dims[3],
    hiddenSize: dims[4],
    position: view.getFloat64(48, true),
  };
  const expected = HEADER_BYTES + stateBytes(h) + 4;
  if (bytes.length < expected)
    throw new MetalaError("format", `snapshot: truncated (${bytes.length} bytes, its header says ${expected})`);
  if (bytes.length > expected)
    throw new MetalaError("format", `snapshot: ${bytes.length - expected} unexpected bytes after the end (${expected} expected)`);
  const stored = view.getUint32(expected - 4, true);
  if (crc32(bytes.subarray(0, expected - 4)) !== stored)
    throw new MetalaError("format", "snapshot: checksum mismatch (the snapshot is corrupt)");
  if (!Number.isSafeInteger(h.position) || h.position < 0)
    throw new MetalaError("format", `snapshot: invalid position ${h.position}`);
  return h;
}

/** Decodes a snapshot for the model with this config and fingerprint, refusing any other. */
export function decodeSnapshot(bytes: Uint8Array, config: MetalaConfig, fingerprint: string): ModelState {
  const h = readSnapshotHeader(bytes);
  const theirs = `${h.numLayers} layers, ${h.numHeads} heads, d ${h.hiddenSize}`;
  const ours = `${config.numLayers} layers, ${config.numHeads} heads, d ${config.hiddenSize}`;
  if (theirs !== ours || h.headKeyDim !== config.headKeyDim || h.headValueDim !== config.headValueDim)
    throw new MetalaError("format", `snapshot: taken on another model (${theirs}; this model has ${ours})`);
  if (h.fingerprint !== fingerprint)
    throw new MetalaError("format", `snapshot: taken on another model (fingerprint ${h.fingerprint}, this model's is ${fingerprint})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const sLen = h.numHeads * h.headKeyDim * h.headValueDim;
  const convLen = 3 * h.hiddenSize;
  let off = HEADER_BYTES;
  const read = (len: number) => {
    let a: Float32Array;
    // slice() copies to a fresh, aligned buffer: the snapshot's own bytes may sit at any offset.
    if (LITTLE_ENDIAN) a = new Float32Array(bytes.slice(off, off + 4 * len).buffer);
    else {
      a = new Float32Array(len);
      for (let i = 0; i < len; i++) a[i] = view.getFloat32(off + 4 * i, true);
    }
    off += 4 * len;
    return a;
  };
  const layers = [];
  for (let l = 0; l < h.numLayers; l++) {
    const S = read(sLen);
    const conv = read(convLen);
    layers.push({ S, conv });
  }
  return { position: h.position, layers };
}
