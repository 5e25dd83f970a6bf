/**
 * metala: run MetaLA language models in Node, browsers and Electron.
 *
 *   import { loadModel } from "metala";
 *   const model = await loadModel("path/to/model");          // or a URL, or picked Files
 *   const session = model.createSession();
 *   for await (const piece of session.generate("The jury said", { maxNewTokens: 50 }))
 *     process.stdout.write(piece.text);
 *   const saved = await session.snapshot();                    // a few MB at any context length
 *   const resumed = model.restoreSession(saved);
 */
export { loadModel, type LoadOptions, type LoadProgress, type ModelLocation } from "./runtime/load.js";
export { Model, Session, type ModelParts, type Prompt, type SessionGenerateOptions } from "./runtime/model.js";
export {
  Generation,
  type ConsumeReport,
  type FinishReason,
  type GenerateOptions,
  type GenerationPiece,
  type GenerationResult,
  type GenerationStats,
  type TokenSequence,
} from "./generate/generate.js";
export { type SamplingOptions } from "./generate/sampling.js";
export { readSnapshotHeader, type SnapshotHeader } from "./runtime/snapshot.js";
export { modelFingerprint } from "./runtime/fingerprint.js";
export { probeDevices, isSoftwareAdapter, type DeviceProbe } from "./runtime/devices.js";
export { allowRelaxedSimd, wasmFeatures, type WasmFeatures } from "./cpu/features.js";
export { type DeviceChoice, type SchedulerPolicy } from "./runtime/scheduler.js";
export { type CostCache, FileCostCache, StorageCostCache, defaultCostCache } from "./runtime/cost-cache.js";
export { type CostTable, type EngineCosts } from "./runtime/costs.js";
export { type WeightDtype } from "./runtime/engines.js";
export { MetalaError, isMetalaError, type ErrorKind } from "./errors.js";
export { emptyState, type Engine, type EngineKind, type EngineSession, type LogitsWanted, type ModelState } from "./engine.js";
export { parseConfig, type MetalaConfig } from "./model/config.js";
export { type WeightSource } from "./model/source.js";
export { openCheckpoint, openCheckpointFromUrl, openCheckpointFromBlobs } from "./model/checkpoint.js";
export { loadTokenizer } from "./tokenizer/load.js";
export { type Tokenizer, type TokenizerFiles, type DecodeStream } from "./tokenizer/tokenizer.js";
