// The Electron main process's model: the Node build of metala (CPU engine on
// worker_threads, GPU engine through the optional "webgpu" package), run in a
// worker thread so that the main process, which also drives every window,
// never blocks. Nothing here needs Electron, so plain Node runs and tests it.
import { loadModelInWorker } from "metala/worker";

/**
 * Loads the model folder and returns the handlers the main process exposes
 * to renderers over IPC.
 */
export async function createMainModel(modelDir, options = {}) {
  const model = await loadModelInWorker(modelDir, { onWarning: (m) => console.warn(`metala: ${m}`), ...options });
  return {
    info: model.info,
    /** Whole text of one generation; options as in Session.generate (no AbortSignal across IPC). */
    async generate(prompt, generateOptions = {}) {
      const result = await model.generateText(prompt, generateOptions);
      return { text: result.text, stats: result.stats, finishReason: result.finishReason };
    },
    dispose: () => model.dispose(),
  };
}
