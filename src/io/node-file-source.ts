import { open, type FileHandle } from "node:fs/promises";
import { MetalaError } from "../errors.js";
import { checkReadArgs, shortReadError, type ByteSource } from "./byte-source.js";

/**
 * A local file read with positional reads on one handle. Node only: nothing a
 * browser bundle imports may import this module.
 */
export class NodeFileSource implements ByteSource {
  private constructor(
    private readonly handle: FileHandle,
    readonly size: number,
    readonly label: string,
  ) {}

  static async open(path: string): Promise<NodeFileSource> {
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (e) {
      throw new MetalaError("io", `${path}: ${describeFsError(e)}`, { cause: e });
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw new MetalaError("io", `${path}: not a regular file`);
      return new NodeFileSource(handle, stat.size, path);
    } catch (e) {
      await handle.close();
      throw e instanceof MetalaError ? e : new MetalaError("io", `${path}: ${describeFsError(e)}`, { cause: e });
    }
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    checkReadArgs(this, offset, length, into);
    const dest = into ?? new Uint8Array(length);
    let done = 0;
    // A positional read may return fewer bytes than asked (large requests, pipes); loop until full.
    while (done < length) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await this.handle.read(dest, done, length - done, offset + done));
      } catch (e) {
        throw new MetalaError("io", `${this.label}: ${describeFsError(e)}`, { cause: e });
      }
      if (bytesRead === 0) throw shortReadError(this, offset, length, done);
      done += bytesRead;
    }
    return dest;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** "no such file" rather than "ENOENT: no such file or directory, open '/x'" (the path is already in our message). */
export function describeFsError(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  switch (code) {
    case "ENOENT":
      return "no such file or folder";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "is a folder, not a file";
    case "ENOTDIR":
      return "a part of the path is not a folder";
    default:
      return e instanceof Error ? e.message : String(e);
  }
}
