import { MetalaError } from "../errors.js";
import type { ByteSource } from "./byte-source.js";
import { describeJson, oneLine } from "./json-file.js";

/**
 * Safetensors header parsing, as strict as the reference implementation
 * (huggingface/safetensors, Rust): a file it would refuse is refused here too,
 * with a message that names the file and the tensor.
 */

/** The reference's cap on the JSON header. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bits per element of every dtype the format defines (sub-byte float formats included). */
export const DTYPE_BITS: Readonly<Record<string, number>> = {
  BOOL: 8,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  F64: 64,
  I64: 64,
  U64: 64,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
};

export interface SafetensorsTensor {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute offset of the first byte in the file. */
  begin: number;
  byteLength: number;
}

export interface SafetensorsFile {
  source: ByteSource;
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

/** Reads and validates the header of a safetensors file; the tensor data stays in the source. */
export async function readSafetensors(source: ByteSource): Promise<SafetensorsFile> {
  const label = source.label;
  if (source.size < 8) throw formatError(label, `${source.size} bytes is too short for a safetensors file (8-byte header length missing)`);
  const lengthBytes = await source.read(0, 8);
  const headerLength = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES))
    throw formatError(label, `header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`);
  const n = Number(headerLength);
  if (8 + n > source.size)
    throw formatError(label, `header length ${n} runs past the end of the ${source.size}-byte file (truncated, or not a safetensors file)`);
  const header = await source.read(8, n);
  const { tensors, metadata } = parseSafetensorsHeader(header, source.size - 8 - n, label);
  for (const t of tensors.values()) t.begin += 8 + n;
  return { source, tensors, metadata };
}

/**
 * Validates the JSON header bytes against a data section of `dataBytes`
 * bytes. Offsets in the result are relative to the data section.
 */
export function parseSafetensorsHeader(
  header: Uint8Array,
  dataBytes: number,
  label: string,
): { tensors: Map<string, SafetensorsTensor>; metadata: Record<string, string> } {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(header);
  } catch {
    throw formatError(label, "header is not valid UTF-8");
  }
  if (!text.startsWith("{")) throw formatError(label, "header does not start with '{' (not a safetensors file?)");
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw formatError(label, `header is not valid JSON (${oneLine(e instanceof Error ? e.message : String(e))})`);
  }
  if (!isPlainObject(raw)) throw formatError(label, "header is not a JSON object");

  let metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [name, entry] of Object.entries(raw)) {
    if (name === "__metadata__") metadata = parseMetadata(entry, label);
    else tensors.set(name, parseTensor(name, entry, label));
  }
  checkLayout([...tensors.values()], dataBytes, label);
  return { tensors, metadata };
}

function parseMetadata(entry: unknown, label: string): Record<string, string> {
  if (entry === null) return {};
  if (!isPlainObject(entry)) throw formatError(label, `"__metadata__" must be an object of strings`);
  for (const [k, v] of Object.entries(entry))
    if (typeof v !== "string") throw formatError(label, `"__metadata__" value of ${quote(k)} must be a string, got ${typeName(v)}`);
  return entry as Record<string, string>;
}

function parseTensor(name: string, entry: unknown, label: string): SafetensorsTensor {
  const where = `tensor ${quote(name)}`;
  if (!isPlainObject(entry)) throw formatError(label, `${where}: expected an object with dtype, shape, data_offsets, got ${typeName(entry)}`);
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== "string") throw formatError(label, `${where}: "dtype" must be a string, got ${typeName(dtype)}`);
  const bits = Object.hasOwn(DTYPE_BITS, dtype) ? DTYPE_BITS[dtype] : undefined;
  if (bits === undefined) throw formatError(label, `${where}: unknown dtype ${quote(dtype)}`);
  if (!Array.isArray(shape) || !shape.every(isIndex))
    throw formatError(label, `${where}: "shape" must be a list of non-negative integers, got ${describeJson(shape)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex))
    throw formatError(label, `${where}: "data_offsets" must be [begin, end] with non-negative integers, got ${describeJson(offsets)}`);
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw formatError(label, `${where}: data_offsets [${begin}, ${end}] end before they begin`);

  let elements = 1;
  for (const dim of shape as number[]) {
    elements *= dim;
    if (elements > Number.MAX_SAFE_INTEGER) throw formatError(label, `${where}: shape ${describeJson(shape)} is impossibly large`);
  }
  const totalBits = elements * bits;
  if (totalBits > Number.MAX_SAFE_INTEGER) throw formatError(label, `${where}: shape ${describeJson(shape)} is impossibly large`);
  if (totalBits % 8 !== 0) throw formatError(label, `${where}: ${elements} elements of ${dtype} do not fill whole bytes`);
  const needed = totalBits / 8;
  if (end - begin !== needed)
    throw formatError(label, `${where}: shape ${describeJson(shape)} of ${dtype} needs ${needed} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
  return { name, dtype, shape: shape as number[], begin, byteLength: needed };
}

/**
 * The reference accepts only data sections that tensors tile exactly: sorted
 * by offset, each starts where the previous ended, the last ends at the end
 * of the file. A gap, an overlap or trailing bytes mean a corrupt or
 * mis-written file.
 */
function checkLayout(tensors: SafetensorsTensor[], dataBytes: number, label: string): void {
  for (const t of tensors)
    if (t.begin + t.byteLength > dataBytes)
      throw formatError(
        label,
        `tensor ${quote(t.name)}: data_offsets [${t.begin}, ${t.begin + t.byteLength}] run past the ${dataBytes}-byte data section (file truncated?)`,
      );
  const sorted = tensors.slice().sort((a, b) => a.begin - b.begin || a.byteLength - b.byteLength);
  let end = 0;
  let previous: SafetensorsTensor | undefined;
  for (const t of sorted) {
    if (t.begin < end)
      throw formatError(
        label,
        `tensors ${quote(previous!.name)} and ${quote(t.name)} overlap (bytes ${previous!.begin}-${end} and ${t.begin}-${t.begin + t.byteLength})`,
      );
    if (t.begin > end) throw formatError(label, `${t.begin - end} unused bytes before tensor ${quote(t.name)} (data_offsets must tile the data section)`);
    end = t.begin + t.byteLength;
    previous = t;
  }
  if (end !== dataBytes) throw formatError(label, `${dataBytes - end} bytes after the last tensor's data (data_offsets must cover the data section)`);
}

function formatError(label: string, message: string): MetalaError {
  return new MetalaError("format", `${label}: ${message}`);
}

function isIndex(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "a list" : typeof v;
}


/** A name quoted and escaped (no control characters reach the terminal), shortened if absurdly long. */
export function quote(name: string): string {
  const s = JSON.stringify(name);
  return s.length > 200 ? s.slice(0, 197) + '..."' : s;
}
