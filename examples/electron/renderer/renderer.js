// The renderer half: the browser build (its Web Worker runs the model) plus,
// inside Electron, the main process's model through the preload's bridge.
// Greedy decoding on both, so the two outputs can be compared side by side.
// URL parameters: model (default the embedded model), device.
import { loadModelInWorker } from "/dist/bundle/browser/index.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const greedy = () => ({ temperature: 0, maxNewTokens: Number($("max-tokens").value) });

window.addEventListener("unhandledrejection", (e) => {
  document.body.dataset.state = "error";
  $("renderer-info").textContent = `error: ${e.reason?.message ?? e.reason}`;
});

const model = await loadModelInWorker(params.get("model") ?? "/models/metala-brown/", {
  device: params.get("device") ?? "auto",
  onProgress: (p) => ($("renderer-info").textContent = `${p.phase}: ${(p.loadedBytes / 1e6).toFixed(1)} of ${(p.totalBytes / 1e6).toFixed(1)} MB`),
});
$("renderer-info").textContent = `${model.info.engines.map((e) => e.description).join(", ")}; threads ${model.info.threads.usable ? "on" : "off"}`;
$("renderer-generate").disabled = false;
document.body.dataset.state = "ready";

$("renderer-generate").onclick = async () => {
  document.body.dataset.state = "generating";
  $("renderer-output").textContent = "";
  for await (const piece of model.generate($("prompt").value, greedy())) $("renderer-output").textContent += piece.text;
  document.body.dataset.state = "done";
};

if (window.metalaMain) {
  const info = await window.metalaMain.info();
  $("main-info").textContent = info.engines.map((e) => e.description).join(", ");
  $("main-generate").disabled = false;
  $("main-generate").onclick = async () => {
    $("main-output").textContent = "…";
    const result = await window.metalaMain.generate($("prompt").value, greedy());
    $("main-output").textContent = result.text;
  };
} else {
  $("main-info").textContent = "Not in Electron: no main process to ask.";
}
