import { MetalaError } from "../errors.js";
import type { CheckpointFiles } from "../model/checkpoint.js";
import type { ByteSource } from "./byte-source.js";
import { okOrMissing } from "./http.js";
import { parseJsonText } from "./json-file.js";
import { INDEX_FILE, parseWeightMap } from "./safetensors-index.js";
import { openUrlSource, type UrlSourceOptions } from "./url-source.js";

/**
 * The files of a model folder served over HTTP (a static server, a CDN, the
 * Hugging Face hub's resolve/main/ URLs): config.json, then the index if the
 * server has one (404 means a single model.safetensors).
 */
export async function readCheckpointUrl(baseUrl: string, options: UrlSourceOptions = {}): Promise<CheckpointFiles> {
  const base = baseUrl.replace(/\/+$/, "");
  const config = (await fetchText(`${base}/config.json`, options, false))!;
  const indexText = await fetchText(`${base}/${INDEX_FILE}`, options, true);
  if (indexText === undefined) return { label: base, config, files: { "model.safetensors": await openUrlSource(`${base}/model.safetensors`, options) } };

  const index = parseJsonText(indexText, `${base}/${INDEX_FILE}`);
  const names = [...new Set(parseWeightMap(index, `${base}/${INDEX_FILE}`).values())];
  const files: Record<string, ByteSource> = {};
  // One at a time: a failure leaves nothing to clean up (URL sources hold no handles).
  for (const name of names) files[name] = await openUrlSource(`${base}/${name}`, options);
  return { label: base, config, index, files };
}

/** The body of a small text file; undefined for 404 when `optional`. */
async function fetchText(url: string, options: UrlSourceOptions, optional: boolean): Promise<string | undefined> {
  let res: Response;
  try {
    res = await (options.fetch ?? globalThis.fetch)(url, { headers: options.headers ?? {} });
  } catch (e) {
    throw new MetalaError("io", `${url}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const ok = await okOrMissing(url, res, optional);
  if (!ok) return undefined;
  try {
    return await ok.text();
  } catch (e) {
    throw new MetalaError("io", `${url}: download failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}
