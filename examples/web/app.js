// The demo page: loads a model into a worker through the metala browser
// bundle, streams generated text, and shows what ran where. URL parameters
// preset the form (tests use them): model, device, dtype, cache, prompt,
// autoload=1.
const $ = (id) => document.getElementById(id);
const state = (s) => (document.body.dataset.state = s);

let metala;
try {
  metala = await import("../../dist/bundle/browser/index.js");
} catch (e) {
  state("error");
  $("error").textContent = `The browser bundle is missing or broken (run npm run build): ${e.message}`;
  throw e;
}

let model = null;
let running = null;

function mb(bytes) {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function showError(e) {
  $("error").textContent = e && e.kind ? `${e.kind}: ${e.message}` : String(e && e.message ? e.message : e);
}

function showInfo(info) {
  const gpu = info.devices.webgpu;
  const wasm = info.devices.wasm ?? {};
  const rows = [
    ["Model", `${info.label} — ${(info.config.parameters / 1e6).toFixed(2)}M parameters, d=${info.config.hiddenSize}, ${info.config.numLayers} layers, ${info.config.numHeads} heads, vocab ${info.config.vocabSize}`],
    ["Engines loaded", info.engines.map((e) => `${e.kind}: ${e.description}`).join("; ")],
    ["WebGPU", gpu.available ? `${gpu.description || gpu.device || gpu.vendor || "adapter"}${info.devices.webgpuIsSoftware ? " (software renderer)" : ""}` : `unavailable — ${gpu.reason ?? ""}`],
    ["WebAssembly", `SIMD ${wasm.simd ? "yes" : "no"}, relaxed SIMD ${wasm.relaxedSimd ? "yes" : "no"}, threads ${info.threads.usable ? "yes" : "no"}, ${info.devices.cores} cores`],
    ["Cross-origin isolated", String(self.crossOriginIsolated)],
    ["Loaded from", `${info.cache} in ${(info.loadMs / 1000).toFixed(2)} s`],
  ];
  $("info").replaceChildren(...rows.flatMap(([k, v]) => [Object.assign(document.createElement("dt"), { textContent: k }), Object.assign(document.createElement("dd"), { textContent: v })]));
}

function showProgress(p) {
  const names = { download: "Downloading", weights: "Loading weights", calibrating: "Measuring engines" };
  $("progress").value = p.totalBytes ? p.loadedBytes / p.totalBytes : 0;
  const cached = p.cachedBytes ? ` (${mb(p.cachedBytes)} from the cache)` : "";
  $("progress-text").textContent = `${names[p.phase] ?? p.phase}${p.file ? ` ${p.file}` : ""}: ${mb(p.loadedBytes)} of ${mb(p.totalBytes)}${cached}`;
}

async function load() {
  state("loading");
  showError("");
  $("generate").disabled = true;
  $("load").disabled = true;
  $("warnings").textContent = "";
  $("info").replaceChildren();
  if (model) await model.dispose();
  model = null;
  const picked = [...$("model-folder").files, ...$("model-files").files];
  const where = picked.length > 0 ? picked : $("model-url").value;
  try {
    model = await metala.loadModelInWorker(where, {
      device: $("device").value,
      dtype: $("dtype").value,
      cache: $("cache").value,
      onProgress: showProgress,
      onWarning: (m) => ($("warnings").textContent += `⚠ ${m}\n`),
    });
    $("progress").value = 1;
    $("progress-text").textContent = "Ready.";
    showInfo(model.info);
    $("generate").disabled = false;
    state("ready");
  } catch (e) {
    state("error");
    showError(e);
  } finally {
    $("load").disabled = false;
    refreshCache();
  }
}

function samplingOptions() {
  const num = (id) => ($(id).value === "" ? undefined : Number($(id).value));
  const stop = $("stop").value.split(",").map((s) => s.trim()).filter(Boolean);
  return {
    maxNewTokens: num("max-tokens"),
    temperature: num("temperature"),
    topK: num("top-k"),
    topP: num("top-p"),
    minP: num("min-p"),
    repetitionPenalty: num("repetition-penalty"),
    seed: num("seed"),
    stop: stop.length ? stop : undefined,
  };
}

async function generate() {
  state("generating");
  showError("");
  $("output").textContent = "";
  document.body.dataset.prefillEngine = document.body.dataset.decodeEngines = "";
  $("generate").disabled = true;
  $("stop-button").disabled = false;
  running = new AbortController();
  const t0 = performance.now();
  let first = 0;
  let tokens = 0;
  const generation = model.generate($("prompt").value, { ...samplingOptions(), signal: running.signal });
  try {
    for await (const piece of generation) {
      if (piece.token !== null) {
        tokens++;
        if (tokens === 1) first = performance.now();
      }
      $("output").textContent += piece.text;
      const decodeRate = tokens > 1 ? ((tokens - 1) * 1000) / (performance.now() - first) : 0;
      $("stats").textContent = `${tokens} tokens · ${decodeRate.toFixed(1)} tokens/s · first token after ${((first || performance.now()) - t0).toFixed(0)} ms`;
    }
    const s = generation.result.stats;
    const decodeRate = s.generatedTokens > 1 ? ((s.generatedTokens - 1) * 1000) / s.decodeMs : 0;
    $("stats").textContent =
      `prefill: ${s.promptTokens} tokens on ${s.prefillEngine} in ${s.prefillMs.toFixed(1)} ms (${((s.promptTokens * 1000) / s.prefillMs).toFixed(1)} tokens/s) · ` +
      `decode: ${Math.max(0, s.generatedTokens - 1)} steps on ${s.decodeEngines.join(" → ") || s.prefillEngine}, ${decodeRate.toFixed(1)} tokens/s · ` +
      `first token ${s.timeToFirstTokenMs.toFixed(0)} ms · finished by ${generation.result.finishReason}`;
    document.body.dataset.prefillEngine = s.prefillEngine;
    document.body.dataset.decodeEngines = s.decodeEngines.join(",");
    state("done");
  } catch (e) {
    if (e.kind === "aborted") {
      $("stats").textContent += " · stopped";
      state("stopped");
    } else {
      state("error");
      showError(e);
    }
  } finally {
    running = null;
    $("generate").disabled = false;
    $("stop-button").disabled = true;
  }
}

async function refreshCache() {
  const body = $("cache-list").tBodies[0];
  let list = [];
  try {
    list = await metala.listCachedModels();
  } catch (e) {
    body.replaceChildren();
    return;
  }
  body.replaceChildren(
    ...list.map((m) => {
      const tr = document.createElement("tr");
      for (const text of [m.url, m.store, mb(m.bytes), m.complete ? "yes" : "partial"]) tr.append(Object.assign(document.createElement("td"), { textContent: text }));
      const evict = Object.assign(document.createElement("button"), { textContent: "Evict" });
      evict.onclick = async () => {
        await metala.evictCachedModel(m.url);
        refreshCache();
      };
      const td = document.createElement("td");
      td.append(evict);
      tr.append(td);
      return tr;
    }),
  );
}

$("load").onclick = load;
$("generate").onclick = generate;
$("stop-button").onclick = () => running?.abort();
$("cache-refresh").onclick = refreshCache;
// Picked files are read where they are; clearing the other picker keeps one choice at a time.
$("model-folder").onchange = () => ($("model-files").value = "");
$("model-files").onchange = () => ($("model-folder").value = "");

const params = new URLSearchParams(location.search);
for (const [param, id] of [["model", "model-url"], ["device", "device"], ["dtype", "dtype"], ["cache", "cache"], ["prompt", "prompt"]]) if (params.has(param)) $(id).value = params.get(param);
refreshCache();
if (params.get("autoload") === "1") load();
