/**
 * The model worker's entry module: started by loadModelInWorker as a module
 * Web Worker in browsers and as a worker thread in Node. Bundlers see it
 * through the worker URL that client.ts builds from import.meta.url.
 */
import { parentEndpoint } from "./endpoint.js";
import { serveModel } from "./host.js";

serveModel(await parentEndpoint());
