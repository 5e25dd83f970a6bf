import { checkReadArgs, type ByteSource } from "./byte-source.js";

/** Bytes already in memory: small files, tests, and servers that ignore Range requests. */
export class MemorySource implements ByteSource {
  readonly size: number;
  constructor(
    private readonly bytes: Uint8Array,
    readonly label: string,
  ) {
    this.size = bytes.length;
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    checkReadArgs(this, offset, length, into);
    const view = this.bytes.subarray(offset, offset + length);
    if (!into) return view.slice();
    into.set(view);
    return into;
  }

  async close(): Promise<void> {}
}
