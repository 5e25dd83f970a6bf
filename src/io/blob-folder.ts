import { MetalaError } from "../errors.js";
import type { CheckpointFiles } from "../model/checkpoint.js";
import type { ByteSource } from "./byte-source.js";
import { BlobSource } from "./blob-source.js";
import { parseJsonText } from "./json-file.js";
import { INDEX_FILE, parseWeightMap } from "./safetensors-index.js";

/**
 * The files of a model folder picked in a browser (an <input type=file
 * webkitdirectory> or a drop), by file name. Like a folder on disk: config.json
 * plus model.safetensors, or the index and the shards it names.
 */
export async function readCheckpointBlobs(blobs: ReadonlyMap<string, Blob>, label = "selected files"): Promise<CheckpointFiles> {
  const configBlob = blobs.get("config.json");
  if (!configBlob) throw new MetalaError("io", `${label}: no config.json among the files`);
  const config = await configBlob.text();
  const indexBlob = blobs.get(INDEX_FILE);
  if (!indexBlob) {
    const single = blobs.get("model.safetensors");
    if (!single) throw new MetalaError("io", `${label}: no model.safetensors or ${INDEX_FILE} among the files`);
    return { label, config, files: { "model.safetensors": new BlobSource(single, `${label}/model.safetensors`) } };
  }
  const index = parseJsonText(await indexBlob.text(), `${label}/${INDEX_FILE}`);
  const files: Record<string, ByteSource> = {};
  for (const name of new Set(parseWeightMap(index, `${label}/${INDEX_FILE}`).values())) {
    const blob = blobs.get(name);
    if (!blob) throw new MetalaError("io", `${label}/${name}: shard named in ${INDEX_FILE} is missing`);
    files[name] = new BlobSource(blob, `${label}/${name}`);
  }
  return { label, config, index, files };
}
