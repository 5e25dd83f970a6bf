/**
 * The package in browsers (and Electron renderers, and Web Workers): the
 * whole in-process API, the worker runtime, and the model cache.
 */
export * from "../index.js";
export * from "../worker/index.js";
export { clearModelCache, evictCachedModel, listCachedModels, type CachedModel, type StoreKind } from "./model-cache.js";
