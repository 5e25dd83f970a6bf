import { MetalaError } from "../errors.js";
import { describeJson } from "./json-file.js";
import { quote } from "./safetensors.js";

export const INDEX_FILE = "model.safetensors.index.json";

/**
 * The `weight_map` of a sharded checkpoint's index (tensor name -> shard file
 * name). Shard names must be plain file names in the same folder: an index
 * may not point the loader elsewhere on the disk or server.
 */
export function parseWeightMap(raw: unknown, label: string): Map<string, string> {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new MetalaError("format", `${label}: expected a JSON object`);
  const weightMap = (raw as Record<string, unknown>).weight_map;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap))
    throw new MetalaError("format", `${label}: "weight_map" must be an object of tensor name -> file name`);
  const result = new Map<string, string>();
  for (const [name, file] of Object.entries(weightMap)) {
    if (typeof file !== "string") throw new MetalaError("format", `${label}: weight_map entry for ${quote(name)} must be a file name, got ${describeJson(file)}`);
    if (!isPlainFileName(file))
      throw new MetalaError("format", `${label}: weight_map entry for ${quote(name)} names ${quote(file)}, which is not a file in the same folder`);
    result.set(name, file);
  }
  if (result.size === 0) throw new MetalaError("format", `${label}: "weight_map" lists no tensors`);
  return result;
}

function isPlainFileName(file: string): boolean {
  return file.length > 0 && file !== "." && file !== ".." && !/[/\\\0]/.test(file) && !/^[a-zA-Z]:/.test(file);
}
