import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { MetalaError } from "../errors.js";
import type { CheckpointFiles } from "../model/checkpoint.js";
import type { ByteSource } from "./byte-source.js";
import { parseJsonText } from "./json-file.js";
import { describeFsError, NodeFileSource } from "./node-file-source.js";
import { INDEX_FILE, parseWeightMap } from "./safetensors-index.js";

const SINGLE_FILE = "model.safetensors";

/** The files of a Hugging Face style model folder on disk. Node only. */
export async function readCheckpointFolder(dir: string): Promise<CheckpointFiles> {
  const root = dir.length > 1 ? dir.replace(/[/\\]+$/, "") : dir;
  const kind = await pathKind(root);
  if (kind === "missing") throw new MetalaError("io", `${root}: no such folder`);
  if (kind === "file") throw new MetalaError("io", `${root}: not a folder (a model is a folder with config.json and model.safetensors)`);

  const config = await readText(join(root, "config.json"), "a model folder needs config.json");
  if ((await pathKind(join(root, SINGLE_FILE))) === "file")
    return { label: root, config, files: { [SINGLE_FILE]: await NodeFileSource.open(join(root, SINGLE_FILE)) } };

  if ((await pathKind(join(root, INDEX_FILE))) === "file") {
    const indexLabel = join(root, INDEX_FILE);
    const index = parseJsonText(await readText(indexLabel, ""), indexLabel);
    const shardNames = [...new Set(parseWeightMap(index, indexLabel).values())];
    return { label: root, config, index, files: await openAll(root, shardNames) };
  }

  const hint = (await pathKind(join(root, "pytorch_model.bin"))) === "file" ? " (pytorch_model.bin is not supported: convert it to safetensors)" : "";
  throw new MetalaError("io", `${root}: no ${SINGLE_FILE} or ${INDEX_FILE}${hint}`);
}

async function openAll(root: string, names: string[]): Promise<Record<string, ByteSource>> {
  const opened = await Promise.allSettled(names.map((n) => NodeFileSource.open(join(root, n))));
  const failure = opened.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failure) {
    await Promise.allSettled(opened.map((r) => (r.status === "fulfilled" ? r.value.close() : undefined)));
    throw failure.reason;
  }
  return Object.fromEntries(names.map((n, i) => [n, (opened[i] as PromiseFulfilledResult<NodeFileSource>).value]));
}

async function pathKind(path: string): Promise<"file" | "folder" | "missing" | "other"> {
  try {
    const s = await stat(path);
    return s.isFile() ? "file" : s.isDirectory() ? "folder" : "other";
  } catch (e) {
    if ((e as { code?: unknown }).code === "ENOENT" || (e as { code?: unknown }).code === "ENOTDIR") return "missing";
    throw new MetalaError("io", `${path}: ${describeFsError(e)}`, { cause: e });
  }
}

async function readText(path: string, whyNeeded: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    const reason = describeFsError(e);
    throw new MetalaError("io", `${path}: ${reason}${whyNeeded && (e as { code?: unknown }).code === "ENOENT" ? ` (${whyNeeded})` : ""}`, { cause: e });
  }
}
