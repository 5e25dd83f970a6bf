import { MetalaError } from "../errors.js";
import { readCheckpointBlobs } from "../io/blob-folder.js";
import type { ByteSource } from "../io/byte-source.js";
import { parseJsonText } from "../io/json-file.js";
import { DEFAULT_PIECE_BYTES, isWeightDType, readTensorF32 } from "../io/read-tensor.js";
import { INDEX_FILE, parseWeightMap } from "../io/safetensors-index.js";
import { quote, readSafetensors, type SafetensorsFile, type SafetensorsTensor } from "../io/safetensors.js";
import { readCheckpointUrl } from "../io/url-folder.js";
import type { UrlSourceOptions } from "../io/url-source.js";
import { parseConfig, type MetalaConfig } from "./config.js";
import { EMBED, expectedTensors, LM_HEAD } from "./names.js";
import type { StoredDType, WeightSource } from "./source.js";

/** What a checkpoint is made of, wherever its files live. */
export interface CheckpointFiles {
  /** The checkpoint as a whole in messages: a folder path or base URL. */
  label: string;
  /** config.json: its text, or the parsed JSON. */
  config: unknown;
  /** model.safetensors.index.json (text or parsed) for a sharded checkpoint. */
  index?: unknown;
  /**
   * The safetensors files by file name. With an index, the shards it names;
   * without one, every file given is part of the checkpoint. The checkpoint
   * owns them from here on: it closes them on close() or on a failed open.
   */
  files: ReadonlyMap<string, ByteSource> | Readonly<Record<string, ByteSource>>;
  /** Bytes per read (tests use small pieces to cross piece boundaries). */
  pieceBytes?: number;
}

interface Located {
  file: SafetensorsFile;
  tensor: SafetensorsTensor;
}

/**
 * A safetensors checkpoint (one file or sharded): headers parsed and every
 * tensor the config needs checked up front; tensor data read on demand.
 * When the head is tied, `has(lm_head.weight)` is false and reading, shape
 * or dtype of `lm_head.weight` give the embedding's, so an engine may always
 * ask for the head by name.
 */
export class SafetensorsCheckpoint implements WeightSource {
  readonly tiedHead: boolean;
  readonly storedBytes: number;

  constructor(
    readonly config: MetalaConfig,
    readonly label: string,
    private readonly located: Map<string, Located>,
    private readonly sources: ByteSource[],
    private readonly pieceBytes: number,
  ) {
    this.tiedHead = config.tieWordEmbeddings === true || !located.has(LM_HEAD);
    let bytes = 0;
    for (const spec of expectedTensors(config)) {
      if (spec.name === LM_HEAD && this.tiedHead) continue;
      bytes += located.get(spec.name)?.tensor.byteLength ?? 0;
    }
    this.storedBytes = bytes;
  }

  has(name: string): boolean {
    return name === LM_HEAD && this.tiedHead ? false : this.located.has(name);
  }

  shape(name: string): readonly number[] {
    return this.find(name).tensor.shape;
  }

  storedDType(name: string): StoredDType {
    const { file, tensor } = this.find(name);
    if (!isWeightDType(tensor.dtype))
      throw new MetalaError("weights", `${file.source.label}: tensor ${quote(name)} is ${tensor.dtype}; only F32, F16 and BF16 weights are supported`);
    return tensor.dtype;
  }

  async read(name: string, dest?: Float32Array): Promise<Float32Array> {
    const { file, tensor } = this.find(name);
    const out = dest ?? new Float32Array(tensor.shape.reduce((a, b) => a * b, 1));
    return readTensorF32(file.source, tensor, out, this.pieceBytes);
  }

  async close(): Promise<void> {
    await closeAll(this.sources);
  }

  private find(name: string): Located {
    const found = this.located.get(name === LM_HEAD && this.tiedHead ? EMBED : name);
    if (!found) throw new MetalaError("weights", `${this.label}: no tensor ${quote(name)}`);
    return found;
  }
}

/** Opens a checkpoint from sources: the browser/URL/Blob path, and what the Node folder loader ends in. */
export async function openCheckpointFromSources(files: CheckpointFiles): Promise<SafetensorsCheckpoint> {
  const sources = files.files instanceof Map ? new Map(files.files) : new Map(Object.entries(files.files));
  try {
    const configLabel = `${files.label}/config.json`;
    const configJson = typeof files.config === "string" ? parseJsonText(files.config, configLabel) : files.config;
    const config = parseConfig(configJson, configLabel);
    const located = files.index === undefined ? await locateInFiles(sources, files.label) : await locateByIndex(files, sources);
    // Where a missing tensor should have been: the one file, the index, or the set of files given.
    const home = sources.size === 1 ? [...sources.values()][0].label : files.index !== undefined ? `${files.label}/${INDEX_FILE}` : files.label;
    validateTensors(config, located, home);
    return new SafetensorsCheckpoint(config, files.label, located, [...sources.values()], files.pieceBytes ?? DEFAULT_PIECE_BYTES);
  } catch (e) {
    await closeAll([...sources.values()]);
    throw e;
  }
}

/** Opens a Hugging Face style model folder (config.json plus model.safetensors or an index and its shards). Node only. */
export async function openCheckpoint(dir: string, options: { pieceBytes?: number } = {}): Promise<SafetensorsCheckpoint> {
  // Imported on demand so that browser bundles of this module never reach node:fs.
  const { readCheckpointFolder } = await import("../io/node-folder.js");
  return openCheckpointFromSources({ ...(await readCheckpointFolder(dir)), ...options });
}

/** Opens a model folder served over HTTP(S), reading weights with Range requests (browsers and Node). */
export async function openCheckpointFromUrl(baseUrl: string, options: UrlSourceOptions & { pieceBytes?: number } = {}): Promise<SafetensorsCheckpoint> {
  return openCheckpointFromSources({ ...(await readCheckpointUrl(baseUrl, options)), pieceBytes: options.pieceBytes });
}

/** Opens a model folder's files picked in a browser (or any Blobs), by file name. */
export async function openCheckpointFromBlobs(blobs: ReadonlyMap<string, Blob>, label?: string): Promise<SafetensorsCheckpoint> {
  return openCheckpointFromSources(await readCheckpointBlobs(blobs, label));
}

async function locateInFiles(sources: Map<string, ByteSource>, label: string): Promise<Map<string, Located>> {
  if (sources.size === 0) throw new MetalaError("io", `${label}: no safetensors files given`);
  const parsed = await Promise.all([...sources.values()].map(readSafetensors));
  const located = new Map<string, Located>();
  for (const file of parsed)
    for (const tensor of file.tensors.values()) {
      const earlier = located.get(tensor.name);
      if (earlier)
        throw new MetalaError("format", `${file.source.label}: tensor ${quote(tensor.name)} is also in ${earlier.file.source.label}`);
      located.set(tensor.name, { file, tensor });
    }
  return located;
}

async function locateByIndex(files: CheckpointFiles, sources: Map<string, ByteSource>): Promise<Map<string, Located>> {
  const indexLabel = `${files.label}/${INDEX_FILE}`;
  const indexJson = typeof files.index === "string" ? parseJsonText(files.index, indexLabel) : files.index;
  const weightMap = parseWeightMap(indexJson, indexLabel);
  const shardNames = [...new Set(weightMap.values())];
  for (const name of shardNames)
    if (!sources.has(name)) throw new MetalaError("io", `${files.label}/${name}: shard named in ${INDEX_FILE} is missing`);
  const shards = new Map<string, SafetensorsFile>();
  await Promise.all(shardNames.map(async (name) => shards.set(name, await readSafetensors(sources.get(name)!))));
  const located = new Map<string, Located>();
  for (const [tensorName, shardName] of weightMap) {
    const file = shards.get(shardName)!;
    const tensor = file.tensors.get(tensorName);
    if (!tensor) throw new MetalaError("weights", `${file.source.label}: tensor ${quote(tensorName)} is listed in ${INDEX_FILE} but not in this file`);
    located.set(tensorName, { file, tensor });
  }
  return located;
}

/** Every tensor the config implies must be there, with its shape and a weight dtype. */
function validateTensors(config: MetalaConfig, located: Map<string, Located>, home: string): void {
  const missing: string[] = [];
  let firstMissingShape: number[] = [];
  for (const spec of expectedTensors(config)) {
    const found = located.get(spec.name);
    if (!found) {
      if (!spec.optional) {
        if (missing.length === 0) firstMissingShape = spec.shape;
        missing.push(spec.name);
      }
      continue;
    }
    const { file, tensor } = found;
    if (!sameShape(tensor.shape, spec.shape))
      throw new MetalaError(
        "weights",
        `${file.source.label}: tensor ${quote(spec.name)} has shape [${tensor.shape.join(", ")}], config.json implies [${spec.shape.join(", ")}]`,
      );
    if (!isWeightDType(tensor.dtype))
      throw new MetalaError("weights", `${file.source.label}: tensor ${quote(spec.name)} is ${tensor.dtype}; only F32, F16 and BF16 weights are supported`);
  }
  if (missing.length > 0) {
    const more = missing.length > 1 ? ` (and ${missing.length - 1} more)` : "";
    const headHint = missing[0] === LM_HEAD ? "; config.json says tie_word_embeddings is false" : "";
    throw new MetalaError("weights", `${home}: missing tensor ${quote(missing[0])} [${firstMissingShape.join(", ")}]${more}${headHint}`);
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

async function closeAll(sources: ByteSource[]): Promise<void> {
  await Promise.allSettled(sources.map((s) => s.close()));
}
