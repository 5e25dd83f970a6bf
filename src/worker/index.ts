/** The worker runtime's public surface (re-exported by the package entries). */
export { loadModelInWorker, WorkerGeneration, WorkerModel, WorkerSession, type WorkerModelLocation, type WorkerModelOptions } from "./client.js";
export type { LoadProgressEvent, ModelCacheChoice, WorkerModelInfo } from "./protocol.js";
