import { MetalaError } from "../errors.js";

/**
 * Random access to the bytes of one file, wherever it lives (a Node file
 * handle, an HTTP URL read with Range requests, a browser Blob/File, memory).
 * The loader only ever asks for ranges, so a multi-GB checkpoint is never
 * held in one buffer.
 */
export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** A human name for errors: a path or URL. */
  readonly label: string;
  /**
   * Reads exactly `length` bytes at `offset`. With `into` (whose length must
   * be `length`) the bytes land there and `into` is returned, so callers can
   * read straight into the memory that keeps the weights.
   */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

/**
 * The argument checks every source shares. A request outside the source is a
 * bug in the caller (the safetensors parser bounds every range by `size`
 * before reading), so it throws a plain RangeError, not a user error.
 */
export function checkReadArgs(source: ByteSource, offset: number, length: number, into?: Uint8Array): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > source.size)
    throw new RangeError(`${source.label}: read of ${length} bytes at ${offset} is outside the ${source.size}-byte source`);
  if (into && into.length !== length) throw new RangeError(`${source.label}: destination holds ${into.length} bytes, read asks ${length}`);
}

/** The error for a source that delivered fewer bytes than its size promised (file truncated while open, short HTTP body). */
export function shortReadError(source: ByteSource, offset: number, length: number, got: number): MetalaError {
  return new MetalaError("io", `${source.label}: expected ${length} bytes at offset ${offset}, got ${got} (file changed or truncated?)`);
}
