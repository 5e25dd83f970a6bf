import { checkReadArgs, shortReadError, type ByteSource } from "./byte-source.js";

/** A Blob or File (browser file input / drag and drop, or Node 20's Blob): sliced per read, never read whole. */
export class BlobSource implements ByteSource {
  readonly size: number;
  readonly label: string;
  constructor(
    private readonly blob: Blob,
    label?: string,
  ) {
    this.size = blob.size;
    this.label = label ?? ((blob as { name?: unknown }).name as string | undefined) ?? "blob";
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    checkReadArgs(this, offset, length, into);
    const bytes = new Uint8Array(await this.blob.slice(offset, offset + length).arrayBuffer());
    if (bytes.length !== length) throw shortReadError(this, offset, length, bytes.length);
    if (!into) return bytes;
    into.set(bytes);
    return into;
  }

  async close(): Promise<void> {}
}
